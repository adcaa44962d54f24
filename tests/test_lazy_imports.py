"""``import edge_reid`` and ``edge-reid --help`` import no heavy library and leave the environment alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("cv2", "numba", "onnxruntime", "openvino", "scipy", "onnx", "tensorrt")


def _python(code: str, env: dict | None = None) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environment.update(env or {})
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_edge_reid_loads_no_heavy_library_and_keeps_the_environment():
    report = _python(
        "import edge_reid, edge_reid.backends, json, os, sys; "
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], 'omp': os.environ.get('OMP_WAIT_POLICY')}}))"
    )
    assert report == {"heavy": [], "omp": None}


def test_public_names_import_on_first_use():
    report = _python(
        "import edge_reid, json, sys; before = 'numba' in sys.modules; embedder_class = edge_reid.Embedder; "
        "print(json.dumps({'before': before, 'after': 'numba' in sys.modules, 'name': embedder_class.__name__, "
        "'all': sorted(edge_reid.__all__) == sorted(n for n in edge_reid.__all__ if getattr(edge_reid, n, None) is not None)}))"
    )
    assert report == {"before": False, "after": True, "name": "Embedder", "all": True}


def test_help_of_every_command_loads_no_heavy_library_and_the_cli_sets_omp_wait_policy():
    code = (
        "import json, os, sys, contextlib, io\n"
        "import edge_reid.cli\n"
        "from edge_reid.cli import main\n"
        "seen, app = [], edge_reid.cli.app\n"
        "edge_reid.cli.app = lambda *a, **k: (seen.append(os.environ.get('OMP_WAIT_POLICY')), app(*a, **k))[1]\n"
        "for command in ([], ['run'], ['bench'], ['eval'], ['eval-mot'], ['doctor'], ['gallery'], ['calibrate'], ['build']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main([*command, '--help']) == 0\n"
        "assert os.environ.get('OMP_WAIT_POLICY') == os.environ.get('USER_OMP'), 'given back to the caller'\n"
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], 'omp': sorted(set(seen))}}))\n"
    )
    assert _python(code) == {"heavy": [], "omp": ["PASSIVE"]}
    assert _python(code, {"OMP_WAIT_POLICY": "ACTIVE", "USER_OMP": "ACTIVE"})["omp"] == ["ACTIVE"], "a user's own setting wins"


def test_edge_reid_help_as_a_program_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "edge_reid", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in ("run", "bench", "eval", "doctor"):
        assert command in result.stdout


def test_sinks_read_results_without_loading_the_loop():
    """Data flows one way: sinks depend on the result dataclasses, not on the pipeline that makes them."""
    report = _python(
        "import edge_reid.results, edge_reid.sinks, json, sys; "
        "print(json.dumps([m for m in ('edge_reid.pipeline', 'edge_reid.embedder', 'numba', 'scipy') if m in sys.modules]))"
    )
    assert report == []


def test_gallery_load_rename_save_load_no_numba_scipy_or_opencv_and_match_still_uses_the_kernel(tmp_path):
    """``edge-reid gallery list/rename/remove/export`` read and write the file only: the top-k search
    (Numba) and the one-to-one assignment (SciPy) are imported by the first match, not by the gallery."""
    path = tmp_path / "g.edgereid"
    code = (
        "import json, sys, numpy as np\n"
        "from edge_reid.matching import Gallery\n"
        "gallery = Gallery(4, model_id='m')\n"
        "alice = gallery.add(np.array([1, 0, 0, 0], np.float32), name='alice')\n"
        "gallery.add(np.array([0, 1, 0, 0], np.float32))\n"
        f"gallery.save({str(path)!r})\n"
        f"loaded = Gallery.load({str(path)!r}, model_id='m')\n"
        "loaded.rename(alice, 'Alice')\n"
        f"loaded.save({str(path)!r})\n"
        f"names = [i.name for i in Gallery.load({str(path)!r}, model_id='m').identities]\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "result = loaded.match(np.array([[0, 1, 0, 0], [1, 0, 0, 0]], np.float32), update=False, create=False)\n"
        "from numba.core.caching import FunctionCache\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "from edge_reid.matching import gallery as module\n"
        "kernel = module._first_distinct_owners.dispatcher()\n"
        "print(json.dumps({'heavy': heavy, 'names': names, 'ids': result.identity_ids.tolist(),\n"
        "                  'numba_kernel': isinstance(kernel, Dispatcher) and len(kernel.signatures) == 1,\n"
        "                  'cached': isinstance(kernel._cache, FunctionCache),\n"
        "                  'scipy_after_match': 'scipy' in sys.modules}))\n"
    )
    assert _python(code) == {"heavy": [], "names": ["Alice", None], "ids": [2, 1], "numba_kernel": True, "cached": True,
                            "scipy_after_match": True}


def test_matching_package_names_import_on_first_use():
    report = _python(
        "import edge_reid.matching as matching, json, sys; before = [m for m in ('numba', 'scipy') if m in sys.modules]; "
        "names = {n: getattr(matching, n).__name__ for n in matching.__all__}; "
        "from edge_reid.matching import topk_cosine, assign_unique; "
        "print(json.dumps({'before': before, 'names': names, 'dir': sorted(set(matching.__all__) - set(dir(matching))),"
        " 'unknown': not hasattr(matching, 'nope')}))"
    )
    assert report == {"before": [], "names": {n: n for n in report["names"]}, "dir": [], "unknown": True}
    assert sorted(report["names"]) == ["EmbeddingStore", "Gallery", "Identity", "MatchResult", "TopK", "assign_unique", "topk_cosine"]


def test_output_path_checks_and_image_listing_load_no_opencv_until_an_image_is_read(tmp_path):
    """Every command checks its outputs (is_image_file): only decoding an image needs OpenCV."""
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    code = (
        "import json, sys, numpy as np\n"
        "from edge_reid.output_paths import check_distinct_outputs\n"
        "from edge_reid.data.images import is_image_file, list_images, read_image\n"
        f"check_distinct_outputs({{'--output': {str(tmp_path / 'out.json')!r}}}, {{'--source': {str(folder)!r}}})\n"
        f"listed = [p.name for p in list_images({str(folder)!r})]\n"
        "before = 'cv2' in sys.modules\n"
        "import cv2  # only to write an image for read_image\n"
        f"cv2.imwrite({str(folder / 'b.png')!r}, np.full((2, 3, 3), 7, np.uint8))\n"
        f"image = read_image({str(folder / 'b.png')!r})\n"
        "print(json.dumps({'before': before, 'listed': listed, 'image': image.shape, 'is_image': is_image_file('x.JPG')}))\n"
    )
    assert _python(code) == {"before": False, "listed": ["a.png"], "image": [2, 3, 3], "is_image": True}


def test_sources_load_no_output_code():
    """Data flows one way (source -> ... -> sink): reading a MOTChallenge sequence's seqinfo.ini
    (edge_reid.motchallenge) loads none of the writing side (edge_reid.mot_writer and what it writes with)."""
    report = _python(
        "import edge_reid.sources, edge_reid.motchallenge, json, sys; "
        "print(json.dumps([m for m in ('edge_reid.mot_writer', 'edge_reid.line_output', 'edge_reid.output_paths', "
        "'edge_reid.sinks') if m in sys.modules]))"
    )
    assert report == []


def test_tracker_of_a_fixed_camera_loads_no_opencv():
    """OpenCV is CameraMotion's: a Tracker made and updated without one never loads it."""
    report = _python(
        "import json, sys, numpy as np\n"
        "from edge_reid import Detections, Tracker\n"
        "import edge_reid.tracking as tracking\n"
        "tracker = tracking.Tracker()\n"
        "for frame in range(3):\n"
        "    tracked = tracker.update(Detections.from_boxes(np.array([[10.0 + frame, 10, 50, 120]]), np.array([0.9])), None, timestamp_s=0.1 * frame)\n"
        "before = 'cv2' in sys.modules\n"
        "from edge_reid.tracking.camera_motion import IDENTITY_WARP\n"
        "try:\n"
        "    from edge_reid.tracking.warp import IDENTITY_WARP as warp\n"
        "except ImportError:\n"
        "    warp = None\n"
        "print(json.dumps({'before': before, 'tracks': len(tracker.tracks), 'same_warp': warp is IDENTITY_WARP,\n"
        "                  'after': 'cv2' in sys.modules}))\n"
    )
    assert report == {"before": False, "tracks": 1, "same_warp": True, "after": True}


def test_events_and_mot_sinks_load_no_opencv(tmp_path):
    """OpenCV is for drawing, showing and writing video (VideoSink, DisplaySink): writing events and
    MOTChallenge rows loads neither it nor the sources that read frames with it."""
    code = (
        "import json, sys, numpy as np\n"
        "from edge_reid.detections import Detections\n"
        "from edge_reid.identities import Identities\n"
        "from edge_reid.results import FrameResult\n"
        "from edge_reid.sinks import EventsSink, MotSink, identity_color\n"
        "tracked = Detections(np.array([[10, 20, 50, 120]], np.float32), np.array([0.8], np.float32), np.array([1]))\n"
        "found = Identities(np.array([1]), (None,), np.array([0.9], np.float32), np.array([True]))\n"
        "result = FrameResult(0, 0.0, np.zeros((200, 100, 3), np.uint8), tracked, found, ('new',))\n"
        f"events, mot = EventsSink({str(tmp_path / 'events.jsonl')!r}), MotSink({str(tmp_path / 'mot.txt')!r})\n"
        "for sink in (events, mot):\n"
        "    sink.write(result)\n"
        "    sink.close()\n"
        "loaded = [m for m in ('cv2', 'edge_reid.sources') if m in sys.modules]\n"
        "color = identity_color(1)\n"
        "print(json.dumps({'loaded': loaded, 'color': len(color), 'after': 'cv2' in sys.modules}))\n"
    )
    assert _python(code) == {"loaded": [], "color": 3, "after": True}
    assert (tmp_path / "mot.txt").read_text().startswith("1,1,10.00,20.00,40.00,100.00,")
    assert (tmp_path / "events.jsonl").read_text().strip()
