"""Names that are not valid UTF-8 (a Latin-1 file name from an old camera card, held by Python as lone
surrogates): OpenCV's binding crashes the process on them (SIGSEGV, no message), so they are refused
first with an error that says what to do. Each case runs in a fresh process: on the code before,
the crash would take pytest with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_reid.opencv_names import is_utf8_name, not_utf8_message

REPO = Path(__file__).resolve().parents[1]
LATIN1_NAME = b"caf\xe9"  # "café" in Latin-1: not UTF-8

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bytes file names as Linux file systems keep them")


def _latin1_path(folder: Path, suffix: str) -> Path:
    return Path(os.fsdecode(bytes(folder) + b"/" + LATIN1_NAME + suffix.encode()))


def test_names_are_utf8_unless_they_hold_undecodable_bytes(tmp_path):
    assert is_utf8_name("/data/café 名.avi") and is_utf8_name(Path("video.mp4")) and is_utf8_name("rtsp://host/stream")
    assert not is_utf8_name(_latin1_path(tmp_path, ".avi"))
    assert not is_utf8_name(str(_latin1_path(tmp_path, ".avi")))
    assert not is_utf8_name("clip\ud800.avi") and not is_utf8_name(b"caf\xe9.avi")  # a lone surrogate, bytes: no error
    message = not_utf8_message(_latin1_path(tmp_path, ".avi"), "source")
    assert message.startswith("source ") and "caf\\xe9.avi" in message and "rename" in message
    assert "clip\\ud800.avi" in not_utf8_message("clip\ud800.avi", "source")


def _run(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", "run", *arguments], cwd=tmp_path, capture_output=True,
                          timeout=300)


def test_run_refuses_a_source_whose_name_is_not_utf8_instead_of_crashing(tmp_path, vtest_path):
    source = _latin1_path(tmp_path, ".avi")
    os.symlink(vtest_path, source)
    mot = tmp_path / "mot.txt"
    mot.write_text("an earlier run's rows\n")
    result = _run(["--source", os.fsencode(source), "--mot", str(mot), "--max-frames", "2"], tmp_path)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (result.returncode, stderr)
    assert "caf\\xe9.avi" in stderr and "not valid UTF-8" in stderr and "Traceback" not in stderr
    assert mot.read_text() == "an earlier run's rows\n"


def test_run_refuses_an_output_video_whose_name_is_not_utf8_before_any_work(tmp_path, vtest_path):
    output = _latin1_path(tmp_path, ".mp4")
    result = _run(["--source", str(vtest_path), "--output", os.fsencode(output), "--max-frames", "2"], tmp_path)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (result.returncode, stderr)
    assert "output video" in stderr and "caf\\xe9.mp4" in stderr and "Traceback" not in stderr
    assert not os.path.lexists(output) and os.listdir(tmp_path) == []


def test_python_api_raises_for_such_names(tmp_path, vtest_path):
    """``open_source`` and ``VideoSink`` (the Python API's way in) raise their documented errors."""
    script = f"""
import os, sys
from pathlib import Path
from edge_reid.errors import OutputPathError, SourceError
from edge_reid.sinks import VideoSink
from edge_reid.sources import open_source
folder = {bytes(tmp_path)!r}
os.symlink({str(vtest_path)!r}, folder + b"/caf\\xe9.avi")
try:
    open_source(os.fsdecode(folder + b"/caf\\xe9.avi"))
except SourceError as error:
    print("source:", error)
try:
    VideoSink(Path(os.fsdecode(folder + b"/caf\\xe9.mp4")))
except OutputPathError as error:
    print("video:", error)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            errors="replace")
    assert result.returncode == 0, (result.returncode, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("source: source ") and lines[1].startswith("video: output video ")
    assert all("not valid UTF-8" in line for line in lines)


def test_an_image_folder_whose_name_is_not_utf8_is_read(tmp_path, vtest_frames):
    """A folder's images are read as bytes and decoded in memory, never opened by name by OpenCV: its name may be
    anything the file system holds."""
    import cv2

    from edge_reid.sources import open_source

    folder = _latin1_path(tmp_path, "")
    os.mkdir(folder)
    ok, encoded = cv2.imencode(".jpg", vtest_frames[0])
    (folder / "frame_0001.jpg").write_bytes(encoded.tobytes())
    frames = list(open_source(folder, fps=10.0))
    assert len(frames) == 1 and frames[0].image.shape == vtest_frames[0].shape


#: An ASCII locale as `LC_ALL=C` gives it when Python's UTF-8 mode is off: Python then holds a valid UTF-8
#: name such as ``vidéo.avi`` as surrogates (``"vid\udcc3\udca9o.avi"``), as it holds a Latin-1 one.
ASCII_LOCALE = {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0"}


def _run_in_ascii_locale(arguments: list, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", "run", *arguments], cwd=tmp_path, capture_output=True,
                          timeout=300, env={**os.environ, **ASCII_LOCALE, "PYTHONPATH": str(REPO)})


def test_a_utf8_source_name_is_read_in_an_ascii_locale(tmp_path, vtest_path):
    """`run --source vidéo.avi` under LC_ALL=C crashed the process (exit -11, no message): the name, valid UTF-8,
    reached OpenCV as surrogates. It is read like any other."""
    os.symlink(vtest_path, tmp_path / "vidéo.avi")
    result = _run_in_ascii_locale(["--source", "vidéo.avi".encode(), "--mot", "out.txt", "--max-frames", "3"], tmp_path)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, (result.returncode, stderr)
    frames = {int(line.split(",")[0]) for line in (tmp_path / "out.txt").read_text().splitlines()}
    assert frames == {1, 2, 3}, frames  # vtest has people in every frame


def test_a_utf8_output_video_name_is_written_in_an_ascii_locale(tmp_path, vtest_path):
    """`run --output é.mp4` under LC_ALL=C crashed in OpenCV's writer; it writes the video under that name."""
    import cv2

    result = _run_in_ascii_locale(["--source", str(vtest_path), "--output", "é.mp4".encode(), "--max-frames", "3"], tmp_path)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, (result.returncode, stderr)
    assert sorted(os.listdir(tmp_path)) == ["é.mp4"]  # the probe removed, no name mangled
    capture = cv2.VideoCapture(str(tmp_path / "é.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 768
    capture.release()


def test_opencv_name_gives_the_utf8_text_of_a_surrogate_held_name(tmp_path):
    from edge_reid.opencv_names import opencv_name

    assert opencv_name(os.fsdecode("vidéo.avi".encode())) == "vidéo.avi"
    assert opencv_name("vid\udcc3\udca9o.avi") == "vidéo.avi" and opencv_name(Path("/data/名.mp4")) == "/data/名.mp4"
    assert opencv_name("rtsp://host/stream") == "rtsp://host/stream"
    with pytest.raises(UnicodeError):
        opencv_name(_latin1_path(tmp_path, ".avi"))
