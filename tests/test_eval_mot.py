import json
import re

import numpy as np
import pytest

from edge_reid.cli import main
from edge_reid.errors import DataError
from edge_reid.evaluation.mot import evaluate_mot
from edge_reid.mot_writer import write_rows
from edge_reid.motchallenge import read_rows


@pytest.fixture(scope="module")
def counted_gt(vtest_gt_dir) -> np.ndarray:
    """The ground truth rows the benchmark counts (conf != 0), as a perfect tracking result."""
    rows = read_rows(vtest_gt_dir / "gt" / "gt.txt")
    return rows[rows[:, 6] != 0]


def test_ground_truth_scores_perfectly(vtest_gt_dir, counted_gt):
    metrics = evaluate_mot(counted_gt, vtest_gt_dir)
    assert metrics.hota == pytest.approx(100.0) and metrics.deta == pytest.approx(100.0) and metrics.assa == pytest.approx(100.0)
    assert metrics.mota == pytest.approx(100.0) and metrics.idf1 == pytest.approx(100.0) and metrics.id_switches == 0
    assert metrics.gt_tracks == metrics.predicted_tracks == 19
    assert metrics.gt_boxes == metrics.predicted_boxes == counted_gt.shape[0]


def test_two_swapped_identities_cost_two_switches(vtest_gt_dir, counted_gt, tmp_path):
    rows = counted_gt.copy()
    frames_of = {pid: set(rows[rows[:, 1] == pid, 0].astype(int)) for pid in np.unique(rows[:, 1])}
    a, b = max(((p, q) for p in frames_of for q in frames_of if p < q), key=lambda pq: len(frames_of[pq[0]] & frames_of[pq[1]]))
    middle = sorted(frames_of[a] & frames_of[b])[len(frames_of[a] & frames_of[b]) // 2]
    late = rows[:, 0] >= middle
    rows[late & (counted_gt[:, 1] == a), 1] = b
    rows[late & (counted_gt[:, 1] == b), 1] = a
    path = tmp_path / "swapped.txt"
    write_rows(path, rows)
    metrics = evaluate_mot(path, vtest_gt_dir)
    assert metrics.id_switches == 2
    assert metrics.mota == pytest.approx(100.0 * (1 - 2 / metrics.gt_boxes))
    assert metrics.deta == pytest.approx(100.0)
    assert metrics.idf1 < 99.0 and metrics.assa < 95.0 and metrics.hota < 98.0


def test_a_missed_person_lowers_detection_not_association(vtest_gt_dir, counted_gt):
    person = counted_gt[0, 1]
    metrics = evaluate_mot(counted_gt[counted_gt[:, 1] != person], vtest_gt_dir)
    assert metrics.predicted_tracks == 18 and metrics.id_switches == 0
    assert metrics.deta < 100.0 and metrics.assa == pytest.approx(100.0)
    missed = int((counted_gt[:, 1] == person).sum())
    assert metrics.mota == pytest.approx(100.0 * (1 - missed / metrics.gt_boxes))


def test_bad_results_are_data_errors(vtest_gt_dir, counted_gt, tmp_path):
    beyond = counted_gt[:3].copy()
    beyond[0, 0] = 796
    with pytest.raises(DataError, match="frame 796 is beyond the sequence's 795 frames"):
        evaluate_mot(beyond, vtest_gt_dir)
    twice = np.concatenate((counted_gt[:1], counted_gt[:1]))
    with pytest.raises(DataError, match="appears twice in frame 1"):
        evaluate_mot(twice, vtest_gt_dir)
    # Rows given as an array get the checks a file's rows get (they reached TrackEval and scipy before).
    for column, value, message in ((2, np.nan, "NaN or infinite"), (4, -5.0, "negative box width"), (0, 0.0, "frames are whole numbers from 1")):
        bad = counted_gt[:3].copy()
        bad[1, column] = value
        with pytest.raises(DataError, match=message):
            evaluate_mot(bad, vtest_gt_dir)
    with pytest.raises(DataError, match="no-gt: ground-truth folder not found"):
        evaluate_mot(counted_gt[:1], tmp_path / "no-gt")
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "seqinfo.ini").write_text("[Sequence]\nseqLength=5\n")
    with pytest.raises(DataError, match="gt.txt is missing"):
        evaluate_mot(counted_gt[:1], tmp_path / "seq")


def test_an_empty_ground_truth_is_refused_naming_the_file(counted_gt, tmp_path, capsys):
    sequence = tmp_path / "seq"
    (sequence / "gt").mkdir(parents=True)
    (sequence / "seqinfo.ini").write_text("[Sequence]\nseqLength=800\n")
    gt = sequence / "gt" / "gt.txt"
    gt.write_text("\n")
    with pytest.raises(DataError, match="has no rows"):
        evaluate_mot(counted_gt[:1], sequence)
    result = tmp_path / "result.txt"
    write_rows(result, counted_gt[:5])
    assert main(["eval-mot", "--gt", str(sequence), str(result)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"ground truth {gt} has no rows" in err[0]


def test_an_empty_result_scores_zero(vtest_gt_dir, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    metrics = evaluate_mot(path, vtest_gt_dir)
    assert metrics.hota == 0.0 and metrics.idf1 == 0.0 and metrics.predicted_boxes == 0


def test_cli_prints_a_table_and_writes_json(vtest_gt_dir, counted_gt, tmp_path, capsys):
    path = tmp_path / "perfect.txt"
    write_rows(path, counted_gt)
    report = tmp_path / "metrics.json"
    assert main(["eval-mot", "--gt", str(vtest_gt_dir), str(path), "--json", str(report)]) == 0
    out = capsys.readouterr()
    assert "HOTA 100.00" in out.out and "IDF1 100.00" in out.out and "IDSW 0" in out.out
    payload = json.loads(report.read_text())
    assert payload["results"][0]["file"] == str(path) and payload["results"][0]["hota"] == pytest.approx(100.0)
    assert payload["results"][0]["sequence"] == "vtest-mot"


def test_cli_bad_input_is_one_line_and_exit_2(vtest_gt_dir, tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_text("0,1,2,3,4,5,1,-1,-1,-1\n")
    assert main(["eval-mot", "--gt", str(vtest_gt_dir), str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.txt, line 1: frame 0 is not a 1-based frame number" in err[0]
    assert main(["eval-mot", "--gt", str(tmp_path / "none"), str(path)]) == 2


@pytest.mark.parametrize("iou", [0.0, -1.0, 1.5, float("nan"), 0.96])
def test_an_iou_threshold_outside_what_the_cli_accepts_is_a_value_error_naming_it(tmp_path, iou):
    folder = _sequence(tmp_path / "seq", MOT17_GT)
    with pytest.raises(ValueError, match=rf"iou_threshold must be a number in \[0.05, 0.95\], got {iou!r}"):
        evaluate_mot(ONLY_PERSON_1, folder, iou_threshold=iou)



def test_the_cli_accepts_the_same_iou_range(tmp_path, capsys):
    pytest.importorskip("trackeval")
    folder = _sequence(tmp_path / "seq", MOT17_GT)
    result = tmp_path / "r.txt"
    write_rows(result, ONLY_PERSON_1)
    assert main(["eval-mot", "--gt", str(folder), "--iou", "0.95", str(result)]) == 0
    capsys.readouterr()
    assert main(["eval-mot", "--gt", str(folder), "--iou", "0.96", str(result)]) == 2
    assert "--iou" in capsys.readouterr().err


def _sequence(folder, gt_text: str, length: int = 2, name: str | None = None):
    """A MOTChallenge sequence folder: seqinfo.ini and gt/gt.txt holding ``gt_text`` as given (no newline translation)."""
    (folder / "gt").mkdir(parents=True)
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={name or folder.name}\nframeRate=10\nseqLength={length}\n")
    (folder / "gt" / "gt.txt").write_text(gt_text, newline="")
    return folder


#: MOT16/17/20 ground truth (9 columns: ..., conf, class, visibility): person 1 (class 1) and a static person (class 7).
MOT17_GT = "".join(f"{frame},1,10,10,40,100,1,1,1.0\n{frame},2,200,10,40,100,1,7,1.0\n" for frame in (1, 2))
#: Only person 1 found.
ONLY_PERSON_1 = np.array([[frame, 1, 10, 10, 40, 100, 0.9, -1, -1, -1] for frame in (1, 2)], np.float64)


def test_a_mot17_sequence_is_scored_with_its_benchmarks_distractor_rules(tmp_path):
    """MOT16/17/20 ground truth has classes: a static person (class 7) is a distractor there, neither
    to be found nor a false positive; the MOT15 settings would count it as a person to find."""
    metrics = evaluate_mot(ONLY_PERSON_1, _sequence(tmp_path / "MOT17-99", MOT17_GT))
    assert metrics.benchmark == "MOT17" and metrics.mota == pytest.approx(100.0)
    assert evaluate_mot(ONLY_PERSON_1, _sequence(tmp_path / "MOT20-99", MOT17_GT)).benchmark == "MOT20"


def test_mot16_format_ground_truth_gets_mot17_settings_whatever_the_folder_is_called(tmp_path):
    """Defect: the settings came from the name alone, so MOT17 ground truth in a folder not named MOT16-/MOT17-/MOT20-
    was scored with MOT15 settings: its classes ignored, the static person a person to find (MOTA 50, not 100).
    The format decides: class ids in column 8 and visibility in column 9 are MOT16+ ground truth; MOT15 ground
    truth has world coordinates (-1 in 2-D) there, and keeps the MOT15 settings even in a folder named MOT17-."""
    from edge_reid.evaluation.mot import mot_benchmark

    metrics = evaluate_mot(ONLY_PERSON_1, _sequence(tmp_path / "my-copy", MOT17_GT))
    assert metrics.benchmark == "MOT17" and metrics.mota == pytest.approx(100.0)
    mot15_gt = "".join(f"{frame},1,10,10,40,100,1,-1,-1,-1\n{frame},2,200,10,40,100,1,-1,-1,-1\n" for frame in (1, 2))
    metrics = evaluate_mot(ONLY_PERSON_1, _sequence(tmp_path / "MOT17-98", mot15_gt))
    assert metrics.benchmark == "MOT15" and metrics.mota == pytest.approx(50.0)
    world = np.array([[1, 9, 499, 158, 31, 75, 1, -4.1554, -7.3591, 0]])  # MOT15 3-D ground truth (PETS, vtest)
    assert mot_benchmark(world, "vtest") == "MOT15" and mot_benchmark(read_rows(tmp_path / "my-copy" / "gt" / "gt.txt")) == "MOT17"


def test_ground_truth_faults_are_data_errors_naming_the_line(tmp_path):
    """Defect: a negative ground-truth id went to TrackEval, which indexes arrays by id: -1 aliased the largest id,
    two people silently became one (AssA 100 -> 50). Ground-truth rows get the result's checks."""
    row = "{},{},100,50,40,80,1,-1,-1,-1\n"
    cases = {
        "negative": ([(1, 1), (2, 1), (3, -1)], "line 3: negative track id -1"),
        "twice": ([(1, 1), (2, 1), (2, 1)], "line 3: track id 1 appears twice in frame 2 (first at line 2)"),
        "beyond": ([(1, 1), (4, 1)], "line 2: frame 4 is beyond the sequence's 3 frames"),
    }
    for name, (rows, message) in cases.items():
        sequence = _sequence(tmp_path / name, "".join(row.format(frame, track) for frame, track in rows), length=3)
        with pytest.raises(DataError, match=re.escape(f"{sequence / 'gt' / 'gt.txt'}, {message}")):
            evaluate_mot(ONLY_PERSON_1, sequence)


@pytest.mark.parametrize("blank", ["trailing", "crlf+trailing", "middle"])
def test_blank_lines_in_the_ground_truth_are_read_as_edge_reid_reads_them(tmp_path, blank):
    """Defect: edge-reid's reader skips blank lines, but TrackEval was handed the user's gt.txt and failed with
    "cannot be read because it is either not present or invalidly formatted"."""
    gt = "".join(f"{frame},{track},{100 * track},50,40,80,1,-1,-1,-1\n" for frame in (1, 2, 3) for track in (1, 2))
    gt = {"trailing": gt + "\n", "crlf+trailing": gt.replace("\n", "\r\n") + "\r\n",
          "middle": gt.replace("2,1,", "\n2,1,", 1)}[blank]
    perfect = np.array([[frame, track, 100 * track, 50, 40, 80, 1] for frame in (1, 2, 3) for track in (1, 2)], float)
    metrics = evaluate_mot(perfect, _sequence(tmp_path / "seq", gt, length=3))
    assert metrics.hota == pytest.approx(100.0) and metrics.mota == pytest.approx(100.0) and metrics.gt_tracks == 2


def test_huge_track_ids_score_as_small_ones(tmp_path):
    """Defect: TrackEval allocates arrays of (largest id + 1) entries: a track id of 4e8 cost 3 GiB, 1e12 an
    internal MemoryError. Ids are numbered 1..K before TrackEval sees them (the scores do not depend on them)."""
    huge = 10**12
    gt = "".join(f"{frame},1,100,50,40,80,1,-1,-1,-1\n{frame},{huge},200,50,40,80,1,-1,-1,-1\n" for frame in (1, 2, 3))
    result = np.array([[frame, track, x, 50, 40, 80, 1] for frame in (1, 2, 3) for track, x in ((7, 100), (huge, 200))], float)
    result[-1, 1] = huge // 2  # person 2 changes track in frame 3: one identity switch
    metrics = evaluate_mot(result, _sequence(tmp_path / "seq", gt, length=3))
    assert metrics.gt_tracks == 2 and metrics.predicted_tracks == 3 and metrics.id_switches == 1
    assert metrics.mota == pytest.approx(100.0 * (1 - 1 / 6))


def test_boxes_are_scored_at_full_precision(tmp_path):
    """Defect: the result was rewritten with boxes rounded to 0.01 px before TrackEval: a box shifted 33.3349 px
    off a 100 px one (IoU 0.49998: no match at 0.5) became 33.33 px (IoU 0.50004: a match, MOTA 100)."""
    sequence = _sequence(tmp_path / "seq", "1,1,0,0,100,100,1,-1,-1,-1\n", length=1)
    result = tmp_path / "result.txt"
    result.write_text("1,1,33.3349,0,100,100,1,-1,-1,-1\n")
    metrics = evaluate_mot(result, sequence)
    assert metrics.mota == pytest.approx(-100.0) and metrics.idf1 == 0.0  # one miss and one false positive


def test_a_result_that_ends_early_is_scored_with_a_note_saying_so(vtest_gt_dir, counted_gt, tmp_path, capsys):
    """A run cut short (--max-frames 60) scored against the whole sequence looks like a bad tracker."""
    path = tmp_path / "first60.txt"
    write_rows(path, counted_gt[counted_gt[:, 0] <= 60])
    metrics = evaluate_mot(path, vtest_gt_dir)
    assert (metrics.last_result_frame, metrics.last_gt_frame) == (60, int(counted_gt[:, 0].max()))
    assert metrics.hota < 30, "scored on the whole sequence, as TrackEval does"
    assert main(["eval-mot", "--gt", str(vtest_gt_dir), str(path)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"first60.txt ends at frame 60, the ground truth at {metrics.last_gt_frame}: every person after frame 60 counts as missed" in err
    assert evaluate_mot(counted_gt, vtest_gt_dir).coverage_note("whole.txt") == "", "a whole run: no note"


def test_a_result_files_faults_name_their_line(vtest_gt_dir, counted_gt, tmp_path):
    """Faults found after reading (a frame beyond the sequence, an id twice in a frame, a negative id) named
    no line; an id of 1.2 was cut to 1 without a word (two tracks merged into one, HOTA 56.98 -> 56.21)."""
    person = "{frame},{track},100,100,40,90,1,-1,-1,-1\n"
    cases = {
        "beyond": ([(1, 1), (2, 1), (796, 1)], "line 4: frame 796 is beyond the sequence's 795 frames"),
        "twice": ([(1, 1), (1, 2), (1, 1)], "line 4: track id 1 appears twice in frame 1 (first at line 1)"),
        "negative": ([(1, 1), (2, -2)], "line 3: negative track id -2"),
        "fraction": ([(1, 1), (2, 1.2)], "line 3: id 1.2 is not a whole number"),
    }
    for name, (rows, message) in cases.items():
        path = tmp_path / f"{name}.txt"
        lines = [person.format(frame=frame, track=track) for frame, track in rows]
        path.write_text(lines[0] + "\n" + "".join(lines[1:]))  # a blank line 2: lines, not rows, are counted
        with pytest.raises(DataError, match=re.escape(f"{name}.txt, {message}")):
            evaluate_mot(path, vtest_gt_dir)
    as_array = counted_gt[:3].copy()
    as_array[1, 1] = 1.5
    with pytest.raises(DataError, match=r"tracking result, row 2: track id 1.5 is not a whole number"):
        evaluate_mot(as_array, vtest_gt_dir)


def test_tab_separated_rows_score_as_comma_separated(vtest_gt_dir, counted_gt, tmp_path):
    """TrackEval reads tabs; edge-reid said "line 1: 1 values"."""
    commas, tabs = tmp_path / "commas.txt", tmp_path / "tabs.txt"
    write_rows(commas, counted_gt[::7])
    tabs.write_text(commas.read_text().replace(",", "\t"))
    assert evaluate_mot(tabs, vtest_gt_dir) == evaluate_mot(commas, vtest_gt_dir)


def test_the_table_names_the_benchmark_settings_used_and_an_empty_result_says_so(tmp_path, capsys):
    sequence = tmp_path / "MOT17-99"
    (sequence / "gt").mkdir(parents=True)
    (sequence / "seqinfo.ini").write_text("[Sequence]\nname=MOT17-99\nframeRate=10\nseqLength=2\n")
    (sequence / "gt" / "gt.txt").write_text("1,1,10,10,40,100,1,1,1.0\n2,1,10,10,40,100,1,1,1.0\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["eval-mot", "--gt", str(sequence), str(empty)]) == 0
    printed = " ".join("".join(capsys.readouterr()).split())
    assert "(TrackEval, MOT17 settings)" in printed and "MOT15" not in printed
    assert "empty.txt has no rows: every person counts as missed" in printed
