"""download_model against a loopback server: failures are refused before or without installing anything, and
each error says what went wrong and what to do (no internet needed)."""

import errno
import hashlib
import http.server
import os
import threading
import time

import pytest

from edge_reid.assets import download_model
from edge_reid.errors import ModelError

MODEL = b"onnx-weights" * 1000


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_body(self, body, content_type="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/model.onnx":
            self.send_body(MODEL)
        elif self.path == "/moved.onnx":
            self.send_response(302)
            self.send_header("Location", "/model.onnx")
            self.end_headers()
        elif self.path == "/empty.onnx":
            self.send_body(b"")
        elif self.path == "/blob/model.onnx":  # e.g. a GitHub "blob" page or a proxy's login page instead of the file
            self.send_body(b"<!DOCTYPE html><html><body>model.onnx</body></html>", "text/html; charset=utf-8")
        elif self.path == "/silent.onnx":
            self.send_response(200)
            self.send_header("Content-Length", str(len(MODEL)))
            self.end_headers()
            self.wfile.write(MODEL[:10])
            self.wfile.flush()
            time.sleep(3)
        else:
            self.send_error(404)


@pytest.fixture()
def base():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_redirect_is_followed(base, tmp_path):
    target = download_model(f"{base}/moved.onnx", tmp_path / "m.onnx", sha256=hashlib.sha256(MODEL).hexdigest())
    assert target.read_bytes() == MODEL


def test_a_malformed_sha256_is_refused_before_downloading(base, tmp_path):
    """A digest with a typo or a "sha256:" prefix downloaded the whole file, then blamed the download
    ("corrupt or the wrong file")."""
    for value in ("sha256:" + hashlib.sha256(MODEL).hexdigest(), hashlib.sha256(MODEL).hexdigest()[:-1], "",
                  hashlib.sha256(MODEL).hexdigest().encode()):  # bytes: an AttributeError before
        with pytest.raises(ModelError, match=r"is not a sha256 digest: give its 64 hexadecimal characters"):
            download_model(f"{base}/model.onnx", tmp_path / "m.onnx", sha256=value)
    assert list(tmp_path.iterdir()) == []
    upper = hashlib.sha256(MODEL).hexdigest().upper()
    assert download_model(f"{base}/model.onnx", tmp_path / "m.onnx", sha256=upper).read_bytes() == MODEL


def test_a_folder_as_destination_is_refused_before_downloading(base, tmp_path):
    """The whole file was fetched, then os.replace failed with an error naming the .part file."""
    with pytest.raises(ModelError, match=rf"to {tmp_path}: it is a folder; give the model file's path, e\.g\. {tmp_path}/model\.onnx"):
        download_model(f"{base}/model.onnx", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_answer_is_not_installed_as_a_model(base, tmp_path):
    target = tmp_path / "m.onnx"
    with pytest.raises(ModelError, match="sent an empty file"):
        download_model(f"{base}/empty.onnx", target)
    assert list(tmp_path.iterdir()) == []


def test_a_web_page_is_not_installed_as_a_model(base, tmp_path):
    """A page about the file (a GitHub blob link, a proxy's login page) was installed as the model when no
    sha256 was given; the model loader then failed far from the cause."""
    target = tmp_path / "m.onnx"
    target.write_bytes(MODEL)  # a good model from before is kept
    with pytest.raises(ModelError, match=r"sent a web page \(text/html\), not a model file; give the file's direct download"):
        download_model(f"{base}/blob/model.onnx", target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"] and target.read_bytes() == MODEL


def test_http_errors_name_the_status_and_the_destination(base, tmp_path):
    with pytest.raises(ModelError, match=rf"cannot download {base}/absent.onnx to {tmp_path}/m.onnx: the server answered HTTP 404 Not Found; check the URL"):
        download_model(f"{base}/absent.onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_silent_server_times_out_with_the_timeout_said(base, tmp_path):
    """The error read only "timed out"."""
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"the server sent nothing for 0\.5 s \(timeout_s\); try again, or give a larger timeout_s"):
        download_model(f"{base}/silent.onnx", tmp_path / "m.onnx", timeout_s=0.5)
    assert time.monotonic() - started < 2.5
    assert list(tmp_path.iterdir()) == []


def test_a_path_instead_of_a_url_says_to_give_a_url(tmp_path):
    source = tmp_path / "source.onnx"
    source.write_bytes(MODEL)
    with pytest.raises(ModelError, match=r"not a URL; give an http\(s\):// or file:// URL"):
        download_model(str(source), tmp_path / "out" / "m.onnx")
    assert download_model(source.as_uri(), tmp_path / "out" / "m.onnx").read_bytes() == MODEL


def test_a_full_disk_names_the_destination_and_leaves_nothing(base, tmp_path, monkeypatch):
    import edge_reid.assets as assets

    opened = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(assets.os, "fdopen", lambda *a, **k: FullDisk(opened(*a, **k)))
    with pytest.raises(ModelError, match=rf"to {tmp_path}/m.onnx: No space left on device; free space in its folder or choose another folder"):
        download_model(f"{base}/model.onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_dead_proxy_is_named(tmp_path, monkeypatch):
    """http_proxy is honoured; when it refuses, the error said only "Connection refused", pointing at the server."""
    import socket
    import urllib.request

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)  # proxies are read when the first opener is built
    with pytest.raises(ModelError, match=rf"through the proxy http://127.0.0.1:{port} from http_proxy; check it, or list the host in no_proxy"):
        download_model("http://models.example/m.onnx", tmp_path / "m.onnx", timeout_s=5)
    assert list(tmp_path.iterdir()) == []


def test_two_downloads_of_the_same_model_at_once_leave_one_whole_file(base, tmp_path):
    target = tmp_path / "m.onnx"
    digest = hashlib.sha256(MODEL).hexdigest()
    errors = []

    def fetch():
        try:
            download_model(f"{base}/model.onnx", target, sha256=digest)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"] and target.read_bytes() == MODEL


def test_doctor_says_whether_the_bundled_models_are_the_released_files(tmp_path, monkeypatch):
    """A bundled model damaged on disk made doctor's model checks say nothing (the model 'cannot be read');
    now doctor has a line for the bundled files, checked against their released sha256."""
    import shutil

    import edge_reid.assets as assets
    from edge_reid.doctor import collect_report

    assert assets.damaged_bundled_models() == []
    for name in assets.BUNDLED_SHA256:
        shutil.copy(assets.ASSETS_DIR / name, tmp_path / name)
    assert assets.damaged_bundled_models(tmp_path) == []
    truncated = tmp_path / "yolox_nano.onnx"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (tmp_path / "osnet_x0_25_msmt17.onnx").unlink()
    damaged = assets.damaged_bundled_models(tmp_path)
    assert len(damaged) == 2 and damaged[0].startswith("osnet_x0_25_msmt17.onnx: cannot be read")
    assert damaged[1].startswith("yolox_nano.onnx: sha256 ") and "is not the released file's e8af074932d4" in damaged[1]
    line = {item.name: item for item in collect_report(tmp_path / "engines")[0]}["bundled models"]
    assert line.ok is True and line.value.startswith("intact (osnet_x0_25_msmt17.onnx, yolox_nano.onnx")
    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path)
    monkeypatch.setattr(assets.damaged_bundled_models, "__defaults__", (tmp_path,))
    line = {item.name: item for item in collect_report(tmp_path / "engines")[0]}["bundled models"]
    assert line.ok is False and line.value.startswith("damaged: osnet_x0_25_msmt17.onnx: cannot be read") and "reinstall edge-reid" in line.value
