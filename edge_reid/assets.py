"""Bundled default models (so the main job runs offline) and a checked model download.

The ReID model and the person detector ship inside the package; see
``edge_reid/assets/THIRD_PARTY_NOTICES.md`` for their sources and licenses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from edge_reid.atomic import give_ordinary_permissions
from edge_reid.errors import ModelError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DEFAULT_REID_MODEL = ASSETS_DIR / "osnet_x0_25_msmt17.onnx"
DEFAULT_DETECTOR = ASSETS_DIR / "yolox_nano.onnx"

#: sha256 of the bundled files (from the model provider's release, see shared/README.md).
BUNDLED_SHA256 = {
    "osnet_x0_25_msmt17.onnx": "61b2604171ef9d58d21758626f83b35a253c3d7123976523a6e03068c3c95d7b",
    "yolox_nano.onnx": "e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd",
}


def download_model(url: str, destination: str | Path, sha256: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download a model file to ``destination`` atomically, checking its sha256.

    The file is written to a temporary file in the destination folder, checked,
    then renamed, so an interrupted download never leaves a partial model.

    Args:
        url: http(s) or file URL.
        destination: path of the model file to write.
        sha256: expected hex digest; None skips the check.
        timeout_s: socket timeout in seconds.

    Returns:
        ``destination`` as a Path.

    Raises:
        ModelError: the download fails, ends short of its announced length (``Content-Length``), or the
            digest differs; the destination's folder cannot be made or written.
    """
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part", dir=destination.parent)
    except OSError as exc:
        raise ModelError(f"cannot download {url} to {destination}: {exc.strerror or exc}; choose a folder you can write") from None
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            give_ordinary_permissions(out.fileno())  # readable by other users as a copied file is
            announced = response.headers.get("Content-Length")
            received = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())
        if announced is not None and announced.isdigit() and received != int(announced):
            raise ModelError(f"cannot download {url}: the transfer ended after {received} of {announced} bytes (connection cut); try again")
        if sha256 and digest.hexdigest() != sha256.lower():
            raise ModelError(f"{url}: sha256 {digest.hexdigest()} differs from the expected {sha256}; the download is corrupt or the wrong file")
        os.replace(tmp_name, destination)
    except BaseException as exc:  # Ctrl-C included: the partial file goes
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, ModelError) or not isinstance(exc, Exception):
            raise
        raise ModelError(f"cannot download {url}: {exc}") from None
    return destination
