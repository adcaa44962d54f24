import hashlib
import http.server
import threading

import pytest

from edge_reid.assets import BUNDLED_SHA256, DEFAULT_DETECTOR, DEFAULT_REID_MODEL, download_model
from edge_reid.errors import ModelError
from edge_reid.spec import file_sha256


def test_bundled_models_are_the_documented_files():
    assert file_sha256(DEFAULT_REID_MODEL) == BUNDLED_SHA256[DEFAULT_REID_MODEL.name]
    assert file_sha256(DEFAULT_DETECTOR) == BUNDLED_SHA256[DEFAULT_DETECTOR.name]
    assert (DEFAULT_REID_MODEL.parent / "THIRD_PARTY_NOTICES.md").read_text().count("License") >= 2


@pytest.fixture()
def loopback_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_checks_digest_and_is_atomic(loopback_server, tmp_path, osnet_path):
    served, base = loopback_server
    (served / "model.onnx").write_bytes(osnet_path.read_bytes())
    digest = hashlib.sha256(osnet_path.read_bytes()).hexdigest()
    target = tmp_path / "models" / "model.onnx"
    assert download_model(f"{base}/model.onnx", target, sha256=digest) == target
    assert file_sha256(target) == digest
    wrong = tmp_path / "models" / "wrong.onnx"
    with pytest.raises(ModelError, match="sha256"):
        download_model(f"{base}/model.onnx", wrong, sha256="0" * 64)
    with pytest.raises(ModelError, match="cannot download"):
        download_model(f"{base}/absent.onnx", wrong)
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"], "no partial files left"


def test_a_downloaded_model_has_ordinary_permissions(loopback_server, tmp_path):
    """The model was written 0600 (mkstemp's mode): a service account or container user could not read a
    model an admin downloaded into a shared folder."""
    import os

    served, base = loopback_server
    (served / "model.onnx").write_bytes(b"weights" * 100)
    old_umask = os.umask(0o022)
    try:
        target = download_model(f"{base}/model.onnx", tmp_path / "model.onnx")
    finally:
        os.umask(old_umask)
    assert target.stat().st_mode & 0o777 == 0o644


def test_a_transfer_cut_short_is_refused_without_a_checksum(tmp_path, osnet_path):
    """A server that announces the whole file and sends half: read() returns short data without an error, and the half
    model was installed when no sha256 was given."""
    whole = osnet_path.read_bytes()

    class CutShort(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole[: len(whole) // 2])  # then the connection closes

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = tmp_path / "models" / "model.onnx"
        with pytest.raises(ModelError, match=rf"ended after {len(whole) // 2} of {len(whole)} bytes"):
            download_model(f"http://127.0.0.1:{server.server_address[1]}/model.onnx", target)
        assert list(target.parent.iterdir()) == [], "nothing placed, no partial file left"
    finally:
        server.shutdown()
        server.server_close()


def test_a_destination_that_cannot_be_made_is_a_model_error(tmp_path, loopback_server):
    """mkdir and the temporary file were outside the error handling: a raw OSError reached the caller."""
    served, base = loopback_server
    (served / "m.onnx").write_bytes(b"x")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match=r"cannot download .* to .*a-file/models/m.onnx: .*choose a folder you can write"):
        download_model(f"{base}/m.onnx", blocker / "models" / "m.onnx")


def test_an_interrupted_download_leaves_no_partial_file(tmp_path, loopback_server, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) mid-transfer left the .part file: only Exception was cleaned up."""
    import urllib.request

    served, base = loopback_server
    (served / "m.onnx").write_bytes(b"x" * (3 << 20))
    opened = urllib.request.OpenerDirector.open  # download_model's opener (urlopen's own, with its redirect rules)

    def interrupted_after_a_block(self, *args, **kwargs):
        response = opened(self, *args, **kwargs)
        read = response.read
        calls = []

        def read_then_interrupt(size=-1):
            calls.append(size)
            if len(calls) > 1:
                raise KeyboardInterrupt
            return read(size)

        response.read = read_then_interrupt
        return response

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", interrupted_after_a_block)
    target = tmp_path / "models" / "m.onnx"
    with pytest.raises(KeyboardInterrupt):
        download_model(f"{base}/m.onnx", target)
    assert list(target.parent.iterdir()) == []
