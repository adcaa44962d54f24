"""``edge-reid eval`` and ``edge-reid calibrate`` on the real model and the real mini data set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from edge_reid.cli import main
from edge_reid.tensorrt.qdq_check import qdq_problems


def test_eval_fp32_on_mot17_mini(osnet_path, mot17_dir, tmp_path, capsys):
    out = tmp_path / "fp32.json"
    assert main(["eval", "--model", str(osnet_path), "--data", str(mot17_dir), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["rank1"] == 100.0 and result["rank10"] == 100.0
    assert 95.0 < result["mAP"] <= 100.0
    assert result["query_images"] == 54 and result["gallery_images"] == 304
    assert result["ms_per_image"] > 0 and result["skipped"] == []
    assert "rank-1 100.00" in capsys.readouterr().out


def test_eval_flip_and_rerank_run(osnet_path, mot17_dir, tmp_path):
    out = tmp_path / "r.json"
    assert main(["eval", "--model", str(osnet_path), "--data", str(mot17_dir), "--flip", "--rerank", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["flip"] and result["rerank"] and result["rank1"] >= 98.0 and result["mAP"] > 90.0


def test_eval_bad_data_is_one_line_error(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-reid: error:") and "nowhere" in err[0]


@pytest.mark.slow
def test_calibrate_end_to_end_and_eval_reproduces_the_report(osnet_path, mot17_dir, tmp_path, capsys):
    out_dir = tmp_path / "cal"
    # A lenient budget so the run stays short (the guard's search is covered in test_calibration.py).
    code = main([
        "calibrate", "--model", str(osnet_path), "--data", str(mot17_dir), "--images", "24", "--pool-size", "80",
        "--out", str(out_dir), "--min-top1", "0", "--min-cosine", "0", "--min-p1-cosine", "0", "--min-top5", "0",
        "--max-map-drop", "100",
    ])
    assert code == 0
    # Not a terminal (a log file, CI): each phase is a line when it starts, not only bars at the end.
    phases = re.findall(r"^(.+?)(?: \(\d+\))? at \d\d:\d\d:\d\d$", capsys.readouterr().err, re.M)
    assert phases[:2] == ["FP32 reference", "calibrating (mse)"] and len(phases) >= 5
    report = json.loads((out_dir / "osnet_x0_25_msmt17-int8-report.json").read_text())
    assert report["met"] and report["calibration"]["count"] == 24
    assert all(not name.startswith("..") for name in report["calibration"]["images"])
    assert report["recipe"]["transforms"]["opset"] == 13
    assert report["calibration"]["warning"].startswith("only 24 calibration crops")  # below the sensible minimum
    assert report["pool"]["heldout_crops"] == 40 and report["agreement"]["crops"] == 40
    assert report["recipe"]["range_scale"]["factors_tried"] == [0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5]  # the defaults
    int8 = Path(report["outputs"]["model"])
    graph = onnx.load(str(int8)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # The folded input: pixel - 128 quantized at scale 1 (exact); the model's input is unchanged.
    input_q = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0].endswith("__pixels_minus_128"))
    assert float(inits[input_q.input[1]]) == 1.0 and [i.name for i in graph.input] == ["images"]
    assert qdq_problems(onnx.load(str(int8))) == []  # what TensorRT's parser takes
    assert int8.is_file() and Path(report["outputs"]["tensorrt_table"]).read_text().startswith("TRT-8601-EntropyCalibration2\n")
    # The TensorRT 8 table names the FP32 model's tensors: every INT8 layer's input and output there has a range.
    from edge_reid.calibration.tensorrt_table import read_tensorrt_table
    from test_calibration import _table_matches_the_fp32_model

    _, scales = read_tensorrt_table(report["outputs"]["tensorrt_table"])
    assert len(_table_matches_the_fp32_model(scales, osnet_path, int8)) == report["layers"]["int8"] and "images" in scales
    for model, expected in ((int8, report["quantized"]), (osnet_path, report["fp32"])):
        result_path = tmp_path / f"{model.stem}.json"
        assert main(["eval", "--model", str(model), "--data", str(mot17_dir), "--json", str(result_path)]) == 0
        result = json.loads(result_path.read_text())
        assert {k: result[k] for k in ("rank1", "rank5", "rank10", "mAP")} == {k: expected[k] for k in ("rank1", "rank5", "rank10", "mAP")}


def test_calibrate_usage_errors_exit_2(mot17_dir, tmp_path, capsys):
    assert main(["calibrate", "--data", str(mot17_dir), "--method", "kl", "--out", str(tmp_path)]) == 2
    assert "--method" in capsys.readouterr().err
    for bad in ("1,x", "0.1", ""):
        assert main(["calibrate", "--data", str(mot17_dir), "--range-scales", bad, "--out", str(tmp_path)]) == 2
        assert "--range-scales" in capsys.readouterr().err
    assert main(["calibrate", "--data", str(mot17_dir / "query"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edge-reid: error:") and "test split" in err[-1]
    before = sorted(path.name for path in (mot17_dir / "query").iterdir())
    assert main(["calibrate", "--data", str(mot17_dir), "--out", str(mot17_dir / "query" / "calibration")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--out" in err and "is inside --data" in err and "would be read as part of it" in err
    assert sorted(path.name for path in (mot17_dir / "query").iterdir()) == before, "nothing written into the data set"


def test_range_scales_help_names_the_library_default():
    """`--range-scales`' help gives the default that CalibrationSettings uses (written in two places)."""
    import typer.main

    from edge_reid.calibration.calibrate import RANGE_SCALES
    from edge_reid.cli.app import app

    command = typer.main.get_command(app).commands["calibrate"]
    option = next(p for p in command.params if p.name == "range_scales")
    assert f"Default: {','.join(f'{s:g}' for s in RANGE_SCALES)}." in option.help


def test_eval_names_the_files_it_skipped(mot17_dir, tmp_path, capsys):
    from conftest import unwrapped

    """The table said only 'skipped files 12': which ones, and why, only with --json."""
    import shutil

    tiny = tmp_path / "tiny"
    query = sorted((mot17_dir / "query").iterdir())[:2]
    pids = {q.name.split("_")[0] for q in query}
    (tiny / "query").mkdir(parents=True)
    (tiny / "bounding_box_test").mkdir()
    for path in query:
        shutil.copy(path, tiny / "query")
    for path in sorted((mot17_dir / "bounding_box_test").iterdir()):
        if path.name.split("_")[0] in pids or len(list((tiny / "bounding_box_test").iterdir())) < 6:
            shutil.copy(path, tiny / "bounding_box_test")
    (tiny / "bounding_box_test" / "0055_c9s1_000000_00.jpg").write_bytes(b"not a jpeg")
    (tiny / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    assert main(["eval", "--data", str(tiny)]) == 0
    captured = capsys.readouterr()
    shown = unwrapped(captured.out + captured.err)
    assert "skipped files 2 files:" in shown
    assert "0055_c9s1_000000_00.jpg (not a decodable image)" in shown and "Thumbs.db (not an image file)" in shown


def test_sigterm_during_calibrate_removes_its_scratch_folder(osnet_path, mot17_dir, tmp_path):
    """SIGTERM (a `timeout`, a service stop) ended calibrate where it stood: its scratch folder
    .edge-reid-calibrate-* (candidate models, megabytes) stayed in --out. Now it unwinds: exit 143."""
    import signal
    import subprocess
    import sys

    out_dir = tmp_path / "cal"
    script = f"""
import sys, time
import edge_reid.calibration.calibrate as calibrate
def announced(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(120)
calibrate._int8 = announced   # inside the scratch folder's lifetime
from edge_reid.entry_point import main
sys.exit(main(["calibrate", "--model", {str(osnet_path)!r}, "--data", {str(mot17_dir)!r}, "--images", "24",
               "--pool-size", "80", "--out", {str(out_dir)!r}]))
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    assert [p.name for p in out_dir.iterdir() if p.name.startswith(".edge-reid-calibrate-")], "the scratch folder exists"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and err.strip().endswith("edge-reid: terminated (SIGTERM)"), (process.returncode, err)
    assert "Traceback" not in err
    assert not out_dir.exists(), "the scratch folder and the output folder the command made are gone"



def test_a_ctrl_c_while_calibrate_moves_its_outputs_into_place_leaves_no_mixed_set(osnet_path, mot17_dir, tmp_path):
    """A Ctrl-C right after the new model was moved into place left it beside the earlier run's table and report
    (the report describing another model). The set is moved with interrupts held back: the new set whole, then
    the interrupt. The search is a stand-in writing known contents (the moves are what is tested)."""
    import subprocess
    import sys

    out_dir = tmp_path / "cal"
    script = """
import os, signal, sys
from types import SimpleNamespace
import edge_reid.calibration.calibrate as calibrate
from edge_reid.calibration.guard import Measurement

model, data, out, content, interrupt = sys.argv[1:6]
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job inherits it ignored)

def staged(original, spec, source, order, tmp, evaluator, settings, report, seconds, progress, log):
    (tmp / "m.onnx").write_text(content)
    (tmp / "table.calib").write_text(content)
    report.recipe = {"stand-in": content}
    details = {"path": tmp / "m.onnx", "labelled": None, "agreement": SimpleNamespace(to_dict=lambda: {})}
    return Measurement((), "held-out", 1.0, 1.0, 1.0, 1.0, details=details), spec

calibrate._int8 = staged
if interrupt == "interrupt":
    real_replace, moved = os.replace, []

    def replace(source, target):
        real_replace(source, target)
        moved.append(target)
        if len(moved) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C right after the first file is in place

    calibrate.os = SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
    calibrate.os.replace = replace
try:
    calibrate.calibrate_model(model, data, out, calibrate.CalibrationSettings(images=24, pool_size=40))
    print("done")
except KeyboardInterrupt:
    print("interrupted")
"""
    for content, interrupt in (("first", "no"), ("second", "interrupt")):
        result = subprocess.run([sys.executable, "-c", script, str(osnet_path), str(mot17_dir), str(out_dir), content, interrupt],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "interrupted"
    model, table = out_dir / "osnet_x0_25_msmt17-int8-qdq.onnx", out_dir / "osnet_x0_25_msmt17-int8.calib"
    report = json.loads((out_dir / "osnet_x0_25_msmt17-int8-report.json").read_text())
    assert (model.read_text(), table.read_text(), report["recipe"]["stand-in"]) == ("second", "second", "second")
    assert not [p.name for p in out_dir.iterdir() if p.name.startswith(".edge-reid-calibrate-")], "no scratch left"
