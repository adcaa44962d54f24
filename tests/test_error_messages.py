"""Bad input that reached users as an internal error (exit 1, a traceback file) instead of one line
naming the file or value (exit 2), or as a crash of a model edge-reid can handle."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edge_reid.calibration.pool import check_pool_source
from edge_reid.cli import main
from edge_reid.data.market1501 import load_split, parse_market_name
from edge_reid.errors import DataError, ModelError, OutputPathError
from edge_reid.evaluation.threshold import labelled_images
from edge_reid.folders import require_folder
from edge_reid.output_paths import check_writable
from edge_reid.spec import load_spec
from edge_reid.tensorrt.errors import EngineManifestError
from edge_reid.tensorrt.manifest import read_manifest, scan_engines

#: A JSON number Python's int() refuses (over 4300 digits): json.loads raises a plain ValueError, not JSONDecodeError.
HUGE_JSON_NUMBER = "1" + "0" * 5000


def _too_long(folder: Path, suffix: str = "") -> Path:
    """A name one byte longer than the file system allows (ENAMETOOLONG when looked up)."""
    return folder / ("a" * (os.pathconf(folder, "PC_NAME_MAX") + 1) + suffix)


# -- A Market-1501 name with a number no int64 holds: was "OverflowError: Python int too large to convert to C long"


def test_a_market_name_with_a_huge_number_is_skipped_as_malformed(tmp_path):
    crop = b"\xff\xd8 not read here \xff\xd9"
    (tmp_path / "0001_c1s1_000001_00.jpg").write_bytes(crop)
    (tmp_path / "0002_c2s1_000001_00.jpg").write_bytes(crop)
    huge = "99999999999999999999_c1s1_000001_00.jpg"
    (tmp_path / huge).write_bytes(crop)
    assert parse_market_name(huge) is None
    assert parse_market_name("0001_c99999999999999999999_000001.jpg") is None
    assert parse_market_name("0001_c1s1_99999999999999999999_00.jpg") is None  # the frame too
    assert parse_market_name("0001_c1_f9223372036854775807.jpg").frame == 2**63 - 1  # the largest int64: a name
    split = load_split(tmp_path)
    assert [path.name for path in split.paths] == ["0001_c1s1_000001_00.jpg", "0002_c2s1_000001_00.jpg"]
    assert [(s.path.name, s.reason.split(" (")[0]) for s in split.skipped] == [(huge, "malformed name")]
    paths, pids, _, skipped = labelled_images(tmp_path)  # `gallery threshold --data`
    assert pids.tolist() == [1, 2] and skipped == 1


# -- JSON with a number of over 4300 digits: was "ValueError: Exceeds the limit (4300 digits) ..."


def test_an_engine_manifest_with_a_huge_number_is_a_manifest_error(tmp_path):
    manifest = tmp_path / "osnet.json"
    manifest.write_text('{"schema": ' + HUGE_JSON_NUMBER + "}")
    with pytest.raises(EngineManifestError, match=r"osnet\.json: cannot read engine manifest"):
        read_manifest(manifest)
    [check] = scan_engines(tmp_path, None)  # `edge-reid doctor --engines-dir`: listed as broken, the report goes on
    assert check.status == "broken" and "cannot read engine manifest" in check.reasons[0]


def test_a_sidecar_with_a_huge_number_is_a_model_error(tmp_path, osnet_path):
    model = tmp_path / "reid.onnx"
    model.symlink_to(osnet_path)
    (tmp_path / "reid.json").write_text('{"height": ' + HUGE_JSON_NUMBER + "}")
    with pytest.raises(ModelError, match=r"reid\.json: sidecar spec is not valid JSON"):
        load_spec(model)


# -- A path longer than the file system allows: was "OSError: [Errno 36] File name too long"


@pytest.mark.parametrize(
    "check, error, message",
    [
        (lambda p: require_folder(p, "dataset folder"), DataError, r"cannot be read \(File name too long\)"),
        (lambda p: load_spec(p), ModelError, r"cannot read the model file \(File name too long\); give an .onnx file"),
        (lambda p: check_pool_source(p), DataError, r"cannot be read \(File name too long\); give a folder of person crops"),
        (lambda p: check_writable(p, "metrics JSON"), OutputPathError, "cannot write metrics JSON to .*: File name too long"),
    ],
    ids=["folder", "model", "pool", "output"],
)
def test_a_name_too_long_is_a_one_line_error(tmp_path, check, error, message):
    with pytest.raises(error, match=message):
        check(_too_long(tmp_path))


def test_a_name_too_long_is_no_engines_folder(tmp_path):
    assert scan_engines(_too_long(tmp_path), None) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda long, gt: ["eval", "--data", str(long)], r"cannot be read \(File name too long\); give the folder holding query/"),
        (lambda long, gt: ["eval-mot", str(gt / "gt" / "gt.txt"), "--gt", str(long)], r"cannot be read \(File name too long\); give a MOTChallenge"),
        (lambda long, gt: ["eval-mot", str(gt / "gt" / "gt.txt"), "--gt", str(gt), "--json", f"{long}.json"],
         "cannot write metrics JSON to .*: File name too long"),
        (lambda long, gt: ["calibrate", "--data", str(long), "--out", str(long.parent / "out")], r"cannot be read \(File name too long\)"),
        (lambda long, gt: ["calibrate", "--data", str(gt.parent / "mot17-reid-mini"), "--out", str(long)],
         "cannot write to output folder .*: File name too long"),
    ],
    ids=["eval --data", "eval-mot --gt", "eval-mot --json", "calibrate --data", "calibrate --out"],
)
def test_a_name_too_long_on_the_command_line_exits_2_with_one_line(tmp_path, vtest_gt_dir, argv, message, capsys):
    assert main(argv(_too_long(tmp_path), vtest_gt_dir)) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "error" in line]  # calibrate says what it starts first
    assert line.startswith("edge-reid: error: ") and re.search(message, line), err
