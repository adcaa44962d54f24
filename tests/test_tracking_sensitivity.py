"""benchmarks/tracking_sensitivity.py: which settings it runs, and a short real run with a peer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_benchmark_script


@pytest.fixture(scope="module")
def sensitivity():
    return load_benchmark_script("tracking_sensitivity")


def test_varied_values_are_rounded_counted_and_kept_below_one(sensitivity):
    frames = sensitivity.Constant("max_age_frames", 3, integer=True)
    assert frames.varied(0.5) == (2, False)  # 1.5 rounds to 2
    assert frames.varied(2.0) == (6, False)
    assert sensitivity.Constant("hits", 1, integer=True).varied(0.5) == (1, False)  # a count stays >= 1
    iou = sensitivity.Constant("iou", 0.7, upper=1.0)
    assert iou.varied(0.5) == (pytest.approx(0.35), False)
    assert iou.varied(2.0) == (pytest.approx(0.85), True)  # past 1: halfway from 0.7 to 1
    assert sensitivity.Constant("seconds", 1.5).varied(2.0) == (3.0, False)


def _subject(sensitivity):
    constants = (sensitivity.Constant("a", 0.4, upper=1.0), sensitivity.Constant("b", 10, integer=True))
    return sensitivity.Subject("toy", "toy", constants, lambda overrides, context: None, lambda: None)


def test_settings_are_the_default_then_each_constant_halved_and_doubled(sensitivity):
    settings = sensitivity.settings_for(_subject(sensitivity))
    assert [s.key for s in settings] == ["default", "a x0.5", "a x2", "b x0.5", "b x2"]
    assert [s.value for s in settings] == [None, pytest.approx(0.2), pytest.approx(0.8), 5, 20]
    assert not any(s.bounded for s in settings)
    only_b = sensitivity.settings_for(_subject(sensitivity), ["b"])
    assert [s.key for s in only_b] == ["default", "b x0.5", "b x2"]


def test_factors_choose_the_multiples_and_zero_turns_a_constant_off(sensitivity):
    settings = sensitivity.settings_for(_subject(sensitivity), ["a"], factors=(0.0, 2.0))
    assert [s.key for s in settings] == ["default", "a x0", "a x2"]
    assert settings[1].value == 0.0
    args = sensitivity.build_parser().parse_args(["--factors", "0,0.5,2"])
    assert args.factors == (0.0, 0.5, 2.0)
    assert sensitivity.build_parser().parse_args([]).factors == (0.5, 2.0)
    for bad in ("-1", "x", "", "nan"):
        with pytest.raises(SystemExit):
            sensitivity.build_parser().parse_args(["--factors", bad])


def test_edge_reid_varies_the_new_track_gate(sensitivity):
    subject = sensitivity._edge_reid_subject()
    gate = {c.name: c for c in subject.constants}["tentative_gate_chi2"]
    assert gate.default == pytest.approx(9.4877)


def test_an_iou_gate_at_x0_is_left_out_not_a_crash(sensitivity, capsys):
    """TrackerConfig refuses 0 for an IoU gate (0 switched it off), so `--constants min_iou --factors 0`
    died with a ValueError traceback after loading the detections; x0 is left out for it, with a note."""
    subject = sensitivity._edge_reid_subject()
    settings = sensitivity.settings_for(subject, ["min_iou", "tentative_gate_chi2"], factors=(0.0, 2.0))
    assert [s.key for s in settings] == ["default", "min_iou x2", "tentative_gate_chi2 x0", "tentative_gate_chi2 x2"]
    assert "min_iou x0 left out" in capsys.readouterr().err


def test_tracking_errors_refuses_a_value_the_tracker_refuses_in_one_line(capsys):
    errors = load_benchmark_script("tracking_errors")
    assert errors.main(["--set", "min_iou=0", "--max-frames", "2"]) == 2
    assert "--set: TrackerConfig.min_iou must be in (0, 1]" in capsys.readouterr().err


def test_unknown_constant_names_the_known_ones(sensitivity):
    with pytest.raises(sensitivity.bench.BenchError, match="toy has no constant.*c.*its constants: a, b"):
        sensitivity.settings_for(_subject(sensitivity), ["c"])


@pytest.mark.slow
def test_bytetrack_constant_halved_and_doubled_on_a_vtest_slice(sensitivity, shared_dir, tmp_path, capsys):
    pytest.importorskip("trackers", reason="roboflow trackers is not installed (pip install '.[bench]')")
    pytest.importorskip("trackeval", reason="TrackEval is not installed (pip install '.[bench]')")
    out = tmp_path / "sensitivity.json"
    argv = ["--subject", "rf-bytetrack", "--constants", "high_conf_det_threshold", "--max-frames", "30"]
    argv += ["--no-progress", "--cache-dir", str(tmp_path / "cache"), "--json", str(out)]
    assert sensitivity.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| high_conf_det_threshold x0.5 | 0.3 (default 0.6) |" in printed
    document = json.loads(out.read_text())
    rows = document["rows"]
    assert [row["setting"] for row in rows] == ["default", "high_conf_det_threshold x0.5", "high_conf_det_threshold x2"]
    assert rows[0]["delta_HOTA"] == 0.0 and rows[0]["delta_IDF1"] == 0.0
    assert 0.0 < rows[0]["HOTA"] <= 100.0
    assert rows[2]["bounded"] and rows[2]["value"] == pytest.approx(0.8)  # 1.2 would pass 1: halfway from 0.6
    assert "0.8 (default 0.6, halfway to 1)" in printed
    assert all(0.0 <= row["HOTA"] <= 100.0 and 0.0 <= row["IDF1"] <= 100.0 for row in rows)


class _CountingModel:
    """A stand-in for the Embedder: a box's vector is its coordinates; counts the boxes embedded."""

    dim = 4

    def __init__(self) -> None:
        self.embedded = 0

    def embed_boxes(self, frame, boxes, out=None):
        self.embedded += len(boxes)
        return np.asarray(boxes, np.float32) + frame[0, 0, 0]


def test_memo_embedder_embeds_each_box_of_a_frame_once(sensitivity):
    model = _CountingModel()
    memo = sensitivity.FrameMemoEmbedder(model)
    frame = np.zeros((8, 8, 3), np.uint8)
    a, b = [0, 0, 4, 4], [2, 2, 6, 6]
    first = memo.embed_boxes(frame, np.array([a, b]))
    again = memo.embed_boxes(frame, np.array([b, a]))  # another setting asks for the same boxes
    assert model.embedded == 2
    np.testing.assert_array_equal(again, first[::-1])
    out = np.zeros((5, 4), np.float32)
    view = memo.embed_boxes(frame, np.array([a]), out=out)
    np.testing.assert_array_equal(out[0], first[0])
    assert view.shape == (1, 4) and np.shares_memory(view, out)  # a view of the caller's buffer
    np.testing.assert_array_equal(view, first[:1])
    next_frame = np.full((8, 8, 3), 1, np.uint8)
    moved = memo.embed_boxes(next_frame, np.array([a]))  # a new frame: embedded again, not reused
    assert model.embedded == 3
    np.testing.assert_array_equal(moved[0], np.asarray(a, np.float32) + 1)
    assert memo.count == 3  # the counter sees the crops really embedded
