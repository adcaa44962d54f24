"""Multi-object tracking metrics of a MOTChallenge result file, computed by TrackEval.

HOTA, DetA and AssA (J. Luiten et al., "HOTA: A Higher Order Metric for Evaluating
Multi-Object Tracking", IJCV 2021), MOTA and ID switches (CLEAR MOT, K. Bernardin and
R. Stiefelhagen, 2008) and IDF1 (E. Ristani et al., ECCV 2016 workshops) all come from
TrackEval (``pip install trackeval``), run the way the MOTChallenge benchmark of the
ground truth runs it. The ground truth's format decides (:func:`mot_benchmark`):

- MOT16/17/20 ground truth (``frame, id, left, top, width, height, conf, class,
  visibility``: a class id 1..13 in column 8, a visibility in [0, 1] in column 9) gets the
  MOT17 settings (``MOT20`` for a sequence named ``MOT20-*``, ``MOT16`` for ``MOT16-*``):
  ground truth of other classes dropped, and tracker boxes on distractors, e.g. static
  people and reflections, removed before scoring;
- any other, e.g. 2D MOT 2015 ground truth (columns 8-10 world coordinates ``x, y, z``,
  -1 in 2-D), gets the MOT15 settings (``BENCHMARK='MOT15'``: no classes).

Ground-truth rows with ``conf`` 0 are ignored in both. Nothing here computes a metric
itself: this module checks the inputs (ground truth and result alike), writes normalised
copies for TrackEval (blank lines dropped, ids numbered 1..K in order, boxes at full
precision: TrackEval sizes arrays by the largest id) and reads its results.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_reid.defaults import MOT_IOU_MAX, MOT_IOU_MIN
from edge_reid.errors import DataError, MissingDependencyError
from edge_reid.motchallenge import read_rows_with_lines, read_sequence_info
from edge_reid.values import is_real

_TRACKER_NAME = "edge-reid"


@dataclass(frozen=True)
class MotMetrics:
    """Tracking metrics of one result on one sequence; percentages in [0, 100] (MOTA can be negative).

    Attributes:
        sequence: sequence name (the ground-truth folder's name).
        hota: HOTA, the mean over localisation thresholds 0.05..0.95 (TrackEval's summary value).
        deta: detection accuracy (DetA), same averaging.
        assa: association accuracy (AssA), same averaging.
        mota: CLEAR MOTA at IoU 0.5.
        idf1: identity F1 at IoU 0.5.
        id_switches: CLEAR ID switches.
        gt_tracks: people (ground-truth ids) evaluated.
        predicted_tracks: track ids in the result.
        gt_boxes: ground-truth boxes evaluated (``conf`` 0 rows excluded).
        predicted_boxes: boxes of the result scored (its rows, less those TrackEval removes on
            distractors under MOT16/17/20 settings).
        benchmark: the MOTChallenge settings used (:func:`mot_benchmark`: from the ground truth's format).
        last_result_frame: the last frame (1-based) with a row in the result, 0 when it has none.
        last_gt_frame: the last frame (1-based) with a ground-truth row. A result that ends well
            before it (a run cut short) is scored as missing every person after its end:
            :meth:`coverage_note` says so.
    """

    sequence: str
    hota: float
    deta: float
    assa: float
    mota: float
    idf1: float
    id_switches: int
    gt_tracks: int
    predicted_tracks: int
    gt_boxes: int
    predicted_boxes: int
    benchmark: str = "MOT15"
    last_result_frame: int = 0
    last_gt_frame: int = 0

    def coverage_note(self, name: str) -> str:
        """A note when the result ends before 90% of the ground truth's frames (``name``: how to call
        the result), else "": its scores count every person after its end as missed."""
        if self.last_result_frame >= 0.9 * self.last_gt_frame:
            return ""
        if self.last_result_frame == 0:
            return f"{name} has no rows: every person counts as missed"
        return (
            f"{name} ends at frame {self.last_result_frame}, the ground truth at {self.last_gt_frame}: every person after "
            f"frame {self.last_result_frame} counts as missed (a run cut short by --max-frames?); compare runs over the "
            "same frames"
        )

    def to_dict(self) -> dict:
        """JSON-ready dict, percentages rounded to 3 decimals."""
        data = asdict(self)
        for key in ("hota", "deta", "assa", "mota", "idf1"):
            data[key] = round(float(data[key]), 3)
        return data


def _import_trackeval():
    try:
        import trackeval  # noqa: PLC0415 (lazy: heavy, optional)
    except ImportError:
        raise MissingDependencyError(
            "tracking metrics need TrackEval: pip install trackeval  (or pip install 'edge-reid[mot]'; "
            "on a Jetson ./install_jetson.sh --mot, which keeps JetPack's OpenCV)"
        ) from None
    return trackeval


def _check_rows(rows: np.ndarray, length: int, name: str, lines: np.ndarray | None = None) -> None:
    """What :func:`~edge_reid.motchallenge.read_rows` checks in a file, for rows given as an array,
    and what needs the sequence: frames within it, ids from 0, one box per track and frame. ``lines``:
    each row's line in the file (errors name it), None for an array (errors name the row, 1-based)."""
    if rows.shape[0] == 0:
        return

    def where(index: int) -> str:
        return f"line {int(lines[index])}" if lines is not None else f"row {index + 1}"

    def first(mask: np.ndarray) -> int:
        return int(np.flatnonzero(mask)[0])

    finite = np.isfinite(rows[:, :7]).all(axis=1)
    if not finite.all():
        raise DataError(f"{name}, {where(first(~finite))}: NaN or infinite values")
    bad_frame = (rows[:, 0] < 1) | (rows[:, 0] != np.round(rows[:, 0]))
    if bad_frame.any():
        raise DataError(f"{name}, {where(first(bad_frame))}: frames are whole numbers from 1 (the video's first frame is 1)")
    if (rows[:, 4:6] < 0).any():
        raise DataError(f"{name}, {where(first((rows[:, 4:6] < 0).any(axis=1)))}: negative box width or height")
    bad_id = rows[:, 1] != np.round(rows[:, 1])
    if bad_id.any():
        raise DataError(f"{name}, {where(first(bad_id))}: track id {rows[first(bad_id), 1]:g} is not a whole number")
    frames = rows[:, 0].astype(np.int64)
    beyond = frames > length
    if beyond.any():
        raise DataError(f"{name}, {where(first(beyond))}: frame {int(frames[first(beyond)])} is beyond the sequence's {length} "
                        "frames (frames are 1-based: the video's first frame is 1)")
    negative = rows[:, 1] < 0
    if negative.any():
        raise DataError(f"{name}, {where(first(negative))}: negative track id {int(rows[first(negative), 1])}")
    pairs = np.stack((frames, rows[:, 1].astype(np.int64)), axis=1)
    _, first_rows, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    repeated = first_rows[inverse.reshape(-1)] != np.arange(len(pairs))
    if repeated.any():
        index = first(repeated)
        frame, track = pairs[index]
        raise DataError(f"{name}, {where(index)}: track id {track} appears twice in frame {frame} (first at "
                        f"{where(int(first_rows[inverse.reshape(-1)[index]]))}); a track has one box per frame")


#: TrackEval's MOTChallenge class ids (1 pedestrian .. 13 crowd; 7 static person, 8 distractor, 12 reflection).
_CLASS_IDS = range(1, 14)


def has_classes(gt_rows: np.ndarray) -> bool:
    """True for ground truth in the MOT16/17/20 format: every row has a class id (a whole number
    1..13, TrackEval's classes) in column 8 and a visibility in [0, 1] in column 9. 2D MOT 2015
    ground truth has world coordinates ``x, y`` there (-1 -1 in 2-D).

    Args:
        gt_rows: (N, 10) rows from :func:`~edge_reid.motchallenge.read_rows`.
    """
    if len(gt_rows) == 0:
        return False
    classes, visibility = gt_rows[:, 7], gt_rows[:, 8]
    whole = classes == np.round(classes)
    return bool(np.all(whole & (classes >= _CLASS_IDS.start) & (classes < _CLASS_IDS.stop))
                and np.all((visibility >= 0) & (visibility <= 1)))


def mot_benchmark(gt_rows: np.ndarray, *names: str) -> str:
    """The MOTChallenge settings that fit a ground truth: ``"MOT15"`` unless it is in the MOT16/17/20 format
    (:func:`has_classes`); then ``"MOT20"`` or ``"MOT16"`` when one of ``names`` (the sequence's names) starts
    ``MOT20-`` or ``MOT16-``, else ``"MOT17"`` (MOT16 and MOT17 settings are the same; MOT20's also count
    non-MOT vehicles as distractors).

    Args:
        gt_rows: (N, 10) ground-truth rows from :func:`~edge_reid.motchallenge.read_rows`.
        names: the sequence's names (``seqinfo.ini``'s and the folder's).
    """
    if not has_classes(gt_rows):
        return "MOT15"
    for name in names:
        for benchmark in ("MOT16", "MOT20"):
            if name.upper().startswith(benchmark + "-"):
                return benchmark
    return "MOT17"


def _write_for_trackeval(path: Path, rows: np.ndarray) -> None:
    """``rows`` with ids numbered 1..K (in order; TrackEval sizes arrays by the largest id), each value at full
    precision (shortest repr: reads back exactly), comma-separated, no blank line."""
    if len(rows) == 0:
        path.write_text("", encoding="utf-8")
        return
    _, ids = np.unique(rows[:, 1], return_inverse=True)
    lines = [
        f"{int(row[0])},{track + 1}," + ",".join(map(repr, row[2:])) + "\n"
        for row, track in zip(rows.tolist(), ids.reshape(-1).tolist())
    ]
    path.write_text("".join(lines), encoding="utf-8")


def evaluate_mot(result: str | os.PathLike | np.ndarray, gt_folder: str | os.PathLike, iou_threshold: float = 0.5) -> MotMetrics:
    """HOTA, DetA, AssA, MOTA, IDF1 and ID switches of a tracking result against MOTChallenge ground truth.

    Args:
        result: a MOTChallenge result file (``frame, id, left, top, width, height, score, ...``,
            frames 1-based), or its rows as an (N, >= 7) array in that column order.
        gt_folder: a MOTChallenge sequence folder with ``seqinfo.ini`` and ``gt/gt.txt``.
        iou_threshold: IoU at which a box counts as a match for MOTA and IDF1, in
            [0.05, 0.95] (:data:`~edge_reid.defaults.MOT_IOU_MIN`..:data:`~edge_reid.defaults.MOT_IOU_MAX`;
            HOTA averages over 0.05..0.95 whatever this is).

    Returns:
        :class:`MotMetrics`.

    The settings (:attr:`MotMetrics.benchmark`) come from the ground truth's format: see
    :func:`mot_benchmark`.

    Raises:
        DataError: a missing or malformed file, a ground truth with no rows, frames beyond
            the sequence, an id that is negative or not whole, or twice in one frame, in the
            result or the ground truth (the message names the file's line, or the array's row).
        MissingDependencyError: TrackEval is not installed.
        ValueError: ``iou_threshold`` is not a number in [0.05, 0.95] (NaN included).
    """
    if not (is_real(iou_threshold) and MOT_IOU_MIN <= iou_threshold <= MOT_IOU_MAX):
        raise ValueError(f"iou_threshold must be a number in [{MOT_IOU_MIN}, {MOT_IOU_MAX}], got {iou_threshold!r}")
    info = read_sequence_info(gt_folder)
    if not info.gt_path.is_file():
        raise DataError(f"{info.gt_path} is missing: a MOTChallenge sequence folder has seqinfo.ini and gt/gt.txt")
    if isinstance(result, np.ndarray):
        rows, name = np.asarray(result, np.float64), "tracking result"
        if rows.ndim != 2 or (rows.size and rows.shape[1] < 7):
            raise DataError(f"tracking result rows must be (N, >= 7), got {rows.shape}")
        lines = None
    else:
        (rows, lines), name = read_rows_with_lines(result, "tracking result"), str(result)
    _check_rows(rows, info.length, name, lines)
    # A clear error for a malformed or empty ground truth, before TrackEval's (which scores an empty one 0).
    gt_rows, gt_lines = read_rows_with_lines(info.gt_path, "ground truth")
    if len(gt_rows) == 0:
        raise DataError(f"ground truth {info.gt_path} has no rows: there is nothing to score against; give the "
                        "sequence's gt/gt.txt with one row per person box (frame, id, left, top, width, height, conf, ...)")
    _check_rows(gt_rows, info.length, str(info.gt_path), gt_lines)
    trackeval = _import_trackeval()

    folder = info.folder.resolve()
    benchmark = mot_benchmark(gt_rows, info.name, folder.name)
    # TrackEval reads normalised copies: the ground truth's every column (class, visibility) but no blank line,
    # both files' ids numbered 1..K, the result's boxes unrounded; x, y, z of the result -1 (TrackEval would
    # read its column 8 as a class).
    result_rows = np.column_stack((rows[:, :7], np.full((len(rows), 3), -1.0))) if len(rows) else rows
    with tempfile.TemporaryDirectory(prefix="edge-reid-mot-") as scratch:
        gt_dir = Path(scratch) / "gt" / folder.name
        (gt_dir / "gt").mkdir(parents=True)
        shutil.copyfile(info.folder / "seqinfo.ini", gt_dir / "seqinfo.ini")
        _write_for_trackeval(gt_dir / "gt" / "gt.txt", gt_rows)
        data_dir = Path(scratch) / "trackers" / _TRACKER_NAME / "data"
        data_dir.mkdir(parents=True)
        _write_for_trackeval(data_dir / f"{folder.name}.txt", result_rows)
        dataset_config = {
            "GT_FOLDER": str(gt_dir.parent),
            "TRACKERS_FOLDER": str(data_dir.parent.parent),
            "TRACKERS_TO_EVAL": [_TRACKER_NAME],
            "BENCHMARK": benchmark,
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {folder.name: info.length},
            "PRINT_CONFIG": False,
        }
        metric_config = {"THRESHOLD": float(iou_threshold), "PRINT_CONFIG": False}
        chatter = io.StringIO()  # TrackEval prints progress and tracebacks; its exception says what went wrong
        try:
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
                metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(metric_config), trackeval.metrics.Identity(metric_config),
                           trackeval.metrics.Count()]
                names = [metric.get_name() for metric in metrics]
                results = trackeval.eval.eval_sequence(folder.name, dataset, _TRACKER_NAME, ["pedestrian"], metrics, names)
        except trackeval.utils.TrackEvalException as exc:
            raise DataError(f"TrackEval cannot evaluate {name} against {info.gt_path}: {exc}") from None
    scores = results["pedestrian"]
    hota, clear, identity, count = scores["HOTA"], scores["CLEAR"], scores["Identity"], scores["Count"]
    return MotMetrics(
        sequence=info.name,
        hota=100.0 * float(np.mean(hota["HOTA"])),
        deta=100.0 * float(np.mean(hota["DetA"])),
        assa=100.0 * float(np.mean(hota["AssA"])),
        mota=100.0 * float(clear["MOTA"]),
        idf1=100.0 * float(identity["IDF1"]),
        id_switches=int(clear["IDSW"]),
        gt_tracks=int(count["GT_IDs"]),
        predicted_tracks=int(count["IDs"]),
        gt_boxes=int(count["GT_Dets"]),
        predicted_boxes=int(count["Dets"]),
        benchmark=benchmark,
        last_result_frame=int(rows[:, 0].max()) if len(rows) else 0,
        last_gt_frame=int(gt_rows[:, 0].max()),
    )
