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
