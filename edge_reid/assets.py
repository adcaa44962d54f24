"""Bundled default models (so the main job runs offline) and a checked model download.

The ReID model and the person detector ship inside the package; see
``edge_reid/assets/THIRD_PARTY_NOTICES.md`` for their sources and licenses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from edge_reid.atomic import WRITE_FAILURES, fsync_directory, give_ordinary_permissions
from edge_reid.errors import ModelError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DEFAULT_REID_MODEL = ASSETS_DIR / "osnet_x0_25_msmt17.onnx"
DEFAULT_DETECTOR = ASSETS_DIR / "yolox_nano.onnx"

#: sha256 of the bundled files (from the model provider's release, see shared/README.md).
BUNDLED_SHA256 = {
    "osnet_x0_25_msmt17.onnx": "61b2604171ef9d58d21758626f83b35a253c3d7123976523a6e03068c3c95d7b",
    "yolox_nano.onnx": "e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd",
}


def damaged_bundled_models(folder: str | Path = ASSETS_DIR) -> list[str]:
    """The bundled model files in ``folder`` that are missing or whose sha256 differs from
    :data:`BUNDLED_SHA256` (an installation damaged on disk, or a file replaced by hand): each as
    ``"name: why"``; [] when every one is intact. Reads both files whole (about 5 MB)."""
    damaged = []
    for name, expected in BUNDLED_SHA256.items():
        path = Path(folder) / name
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            damaged.append(f"{name}: cannot be read ({exc.strerror or exc})")
            continue
        if digest != expected:
            damaged.append(f"{name}: sha256 {digest[:12]}... is not the released file's {expected[:12]}...")
    return damaged


def download_model(url: str, destination: str | Path, sha256: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download a model file to ``destination`` atomically, checking its sha256.

    The file is written to a temporary file in the destination folder, checked,
    then renamed, so an interrupted download never leaves a partial model. Proxies
    come from the usual environment variables (``https_proxy``, ``http_proxy``, ``no_proxy``).

    Args:
        url: http(s) or file URL.
        destination: path of the model file to write (a file, not a folder).
        sha256: expected hex digest (64 hexadecimal characters); None skips the check.
        timeout_s: seconds the server may stay silent (connecting, or between two reads)
            before the download is given up; not a limit on the whole transfer.

    Returns:
        ``destination`` as a Path.

    Raises:
        ModelError: ``url`` is not http(s):// or file://, ``sha256`` is not a sha256 hex digest or ``destination``
            is a folder (all before anything is fetched); the server redirects to another scheme than http(s), or
            from https to http without ``sha256``; the download fails, times out, ends short of its announced length
            (``Content-Length``), is empty or a web page (``text/html``: a page about the file, not the
            file), or the digest differs; the destination's folder cannot be made or written. Nothing
            is left at ``destination`` then (a file already there is kept).
    """
    destination = Path(destination)
    scheme = urllib.parse.urlsplit(str(url)).scheme.lower()
    if scheme not in ("http", "https", "file"):  # urllib also takes ftp:// (no encryption), data: and others
        what = "not a URL" if not scheme else f"{scheme}: URLs are not downloaded"
        raise ModelError(f"cannot download {url} to {destination}: {what}; give an http(s):// or file:// URL")
    if sha256 is not None and (not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())):
        raise ModelError(f"sha256 {sha256!r} for {url} is not a sha256 digest: give its 64 hexadecimal characters")
    if destination.is_dir():
        raise ModelError(f"cannot download {url} to {destination}: it is a folder; give the model file's path, "
                         f"e.g. {destination / (Path(urllib.parse.urlsplit(url).path).name or 'model.onnx')}")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part", dir=destination.parent)
    except OSError as exc:
        raise ModelError(f"cannot download {url} to {destination}: {exc.strerror or exc}; choose a folder you can write") from None
    digest = hashlib.sha256()
    try:
        opener = urllib.request.build_opener(_Redirects(checked=bool(sha256)))  # proxies from the environment too
        with os.fdopen(fd, "wb") as out, opener.open(url, timeout=timeout_s) as response:
            give_ordinary_permissions(out.fileno())  # readable by other users as a copied file is
            announced = response.headers.get("Content-Length")
            if response.headers.get_content_type() == "text/html":
                raise ModelError(f"cannot download {url}: the server sent a web page (text/html), not a model file; "
                                 "give the file's direct download (raw) link")
            received = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())
        if announced is not None and announced.isdigit() and received != int(announced):
            raise ModelError(f"cannot download {url}: the transfer ended after {received} of {announced} bytes (connection cut); try again")
        if received == 0:
            raise ModelError(f"cannot download {url}: the server sent an empty file, not a model; check the URL")
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
        raise ModelError(f"cannot download {url} to {destination}: {_download_failure(exc, url, timeout_s)}") from None
    fsync_directory(destination.parent)
    return destination


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, to http(s) only (urllib also follows one to ``ftp://``, which nothing protects), and
    never from https to plain http unless the download is checked (a sha256 given): anyone on the network
    could change what such a redirect leads to."""

    def __init__(self, checked: bool) -> None:
        super().__init__()
        self.checked = checked

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlsplit(req.full_url).scheme.lower()
        new = urllib.parse.urlsplit(newurl).scheme.lower()
        if new not in ("http", "https"):
            raise ModelError(f"cannot download {req.full_url}: the server redirects it to {newurl}, not an http(s):// "
                             "URL; download the file yourself and give its file:// URL")
        if old == "https" and new == "http" and not self.checked:
            raise ModelError(f"cannot download {req.full_url}: the server redirects it to {newurl}, plain http that anyone "
                             "on the network could alter; give the file's sha256 (sha256=...) to accept it checked")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download_failure(exc: Exception, url: str, timeout_s: float) -> str:
    """What went wrong in a download, and what to do, for :func:`download_model`'s error."""
    import socket
    import urllib.error

    reason = exc.reason if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError) else exc
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"the server sent nothing for {timeout_s:g} s (timeout_s); try again, or give a larger timeout_s"
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {str(exc.reason).splitlines()[0]}; check the URL"
    if isinstance(exc, ValueError) and "unknown url type" in str(exc):
        return "not a URL; give an http(s):// or file:// URL"
    if isinstance(exc, OSError) and exc.errno in WRITE_FAILURES:
        return f"{exc.strerror or exc}; free space in its folder or choose another folder"
    if isinstance(exc, urllib.error.URLError):
        parts = urllib.parse.urlsplit(url)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and parts.hostname and not urllib.request.proxy_bypass(parts.hostname):
            return f"{exc} (through the proxy {proxy} from {parts.scheme}_proxy; check it, or list the host in no_proxy)"
    return str(exc)
