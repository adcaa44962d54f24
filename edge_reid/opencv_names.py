"""Names OpenCV can be given: its Python binding encodes a ``str`` path as UTF-8 and crashes the process
(SIGSEGV, no message) on a name that is not valid UTF-8, which Python holds as lone surrogates
(``os.fsdecode(b"caf\\xe9.avi")`` is ``"caf\\udce9.avi"``: a Latin-1 name from an old camera card or a
Windows share). Checked before every ``cv2.VideoCapture`` / ``cv2.VideoWriter`` that takes a name, so
such a name is an error that says what to do instead of a crash. A valid UTF-8 name is held as surrogates
too when Python decodes file names as ASCII (``LC_ALL=C`` without UTF-8 mode: ``"vid\\udcc3\\udca9o.avi"``
for ``vidéo.avi``), so each such call is given :func:`opencv_name` of it, never the name itself."""

from __future__ import annotations

import os


def is_utf8_name(name: str | os.PathLike) -> bool:
    """Whether ``name`` (a path, URL or pipeline) is valid UTF-8 text, as OpenCV needs it."""
    try:
        os.fsencode(name).decode("utf-8")  # the bytes the file system holds: undecodable ones come back as they were
    except UnicodeError:  # a surrogate no file system byte gives ("\ud800") cannot even be encoded
        return False
    return True


def not_utf8_message(name: str | os.PathLike, what: str) -> str:
    """The error for a ``what`` (``"source"``, ``"output video"``) whose name is not UTF-8: the name with its
    undecodable bytes shown as escapes, and what to do."""
    raw = os.fspath(name)
    try:
        shown = os.fsencode(raw).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a surrogate no file system byte gives ("\ud800"): shown as its escape
        shown = raw.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{what} {shown}: the name is not valid UTF-8 and OpenCV cannot open it; rename the file (e.g. convmv -f latin1 -t utf8)"


def opencv_name(name: str | os.PathLike) -> str:
    """The ``str`` to give OpenCV for ``name`` (a path, URL or pipeline): the file system's bytes of it
    decoded as UTF-8, which OpenCV encodes back to those same bytes. Under an ASCII locale Python holds
    ``vidéo.avi`` as ``"vid\\udcc3\\udca9o.avi"``, on which OpenCV's binding crashes; this gives
    ``"vidéo.avi"``. A name without surrogates comes back unchanged.

    Raises:
        UnicodeError: ``name`` is not valid UTF-8 (:func:`is_utf8_name` is False): refuse it first with
            :func:`not_utf8_message`.
    """
    return os.fsencode(name).decode("utf-8")
