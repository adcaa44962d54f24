"""How much a tracker's accuracy depends on each of its main constants: each one halved and doubled.

For a tracker and its main constants, runs the default configuration and, for each constant in
turn, the configuration with that constant at half and at twice its default (everything else at
the default), all on the same cached detections of ``bench_tracking.py``, interleaved frame by
frame in one pass, and prints HOTA and IDF1 per setting with the change from the default.
Constants are never chosen from this table: it shows how flat the ground is around defaults
chosen by reasoning and published values, so that a result on one video can be trusted on others.

Examples::

    python benchmarks/tracking_sensitivity.py                          # the default subject, vtest
    python benchmarks/tracking_sensitivity.py --frame-step 2 --only-defaults   # one row, at 5 fps
    python benchmarks/tracking_sensitivity.py --set veto_similarity=-1          # every row without the veto
    python benchmarks/tracking_sensitivity.py --subject rf-bytetrack --frame-step 2
    python benchmarks/tracking_sensitivity.py --constants lost_track_buffer,minimum_iou_threshold --json s.json
    python benchmarks/tracking_sensitivity.py --frame-step 4 --constants tentative_gate_chi2 --factors 0,0.5,2   # x0: the gate off
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_tracking as bench  # noqa: E402
from _common import benchmark_parser  # noqa: E402

FACTORS = (0.5, 2.0)


@dataclass(frozen=True)
class Constant:
    """One constant to vary.

    Attributes:
        name: the keyword of the tracker's configuration.
        default: its default value.
        integer: True when the constant counts something (frames, hits): varied values are
            rounded and kept >= 1.
        upper: largest meaningful value (1.0 for a score, an IoU or a cosine similarity), or None;
            a doubled value that would pass it is moved halfway from the default to it instead,
            and marked.
        positive: the tracker refuses 0 (an IoU gate: ``TrackerConfig`` wants it in (0, 1]); a
            factor of 0 is left out for it, with a note.
    """

    name: str
    default: float
    integer: bool = False
    upper: float | None = None
    positive: bool = False

    def varied(self, factor: float) -> tuple[float, bool]:
        """``(value, bounded)``: the default times ``factor``, rounded as the constant needs; ``bounded``
        when that would pass ``upper`` and the value is halfway from the default to ``upper`` instead."""
        value = self.default * factor
        if self.integer:
            value = max(1, int(round(value)))
        bounded = self.upper is not None and value > self.upper
        return ((self.default + self.upper) / 2 if bounded else value), bounded


@dataclass(frozen=True)
class Subject:
    """A tracker whose constants are varied.

    Attributes:
        name: the ``--subject`` name.
        label: what the tables call it.
        constants: its main constants with their defaults.
        build: ``build(overrides, context) -> bench.BenchTracker``: the tracker with the given
            keyword overrides of its defaults.
        missing: None when it can run here, else why not.
    """

    name: str
    label: str
    constants: tuple[Constant, ...]
    build: Callable[[dict, "bench.BuildContext"], "bench.BenchTracker"]
    missing: Callable[[], str | None]


def _signature_defaults(cls, names: tuple[str, ...]) -> dict[str, float]:
    parameters = inspect.signature(cls.__init__).parameters
    return {name: parameters[name].default for name in names}


def _roboflow_subject(name: str, label: str, class_name: str, constants: dict[str, dict]) -> Callable[[], Subject]:
    """A roboflow ``trackers`` tracker: its constants' defaults read from its signature."""

    def make() -> Subject:
        import trackers

        cls = getattr(trackers, class_name)
        defaults = _signature_defaults(cls, tuple(constants))
        varied = tuple(Constant(key, float(defaults[key]), **options) for key, options in constants.items())

        def build(overrides: dict, context: bench.BuildContext) -> bench.BenchTracker:
            typed = {key: (int(value) if isinstance(defaults[key], int) else value) for key, value in overrides.items()}
            return bench.RoboflowTracker(name, label, lambda: cls(frame_rate=context.fps, **typed))

        return Subject(name, label, varied, build, lambda: None)

    return make


class FrameMemoEmbedder(bench.CountingEmbedder):
    """An embedder that embeds each box of a frame once, however many trackers ask for it.

    The harness hands every setting the same image object for a frame; a box asked for again in
    that frame gets the vector computed the first time (the same model on the same pixels), so
    running many settings side by side costs one setting's embeddings.
    """

    def __init__(self, embedder) -> None:
        super().__init__(embedder)
        self._image = None
        self._memo: dict[tuple, np.ndarray] = {}

    def embed_boxes(self, frame, boxes, out=None):
        """(N, 4) boxes of ``frame`` -> (N, D) float32, each box embedded once per frame (written into ``out`` when given)."""
        if frame is not self._image:
            self._image, self._memo = frame, {}
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        keys = [tuple(np.round(box, 2).tolist()) for box in boxes]
        missing = [i for i, key in enumerate(keys) if key not in self._memo]
        if missing:
            vectors = super().embed_boxes(frame, boxes[missing])
            for i, vector in zip(missing, vectors):
                self._memo[keys[i]] = vector.copy()
        result = np.stack([self._memo[key] for key in keys]) if keys else np.zeros((0, self._embedder.dim), np.float32)
        if out is not None:
            out[: len(result)] = result
            return out[: len(result)]
        return result


def _edge_reid_subject() -> Subject:
    """edge-reid's tracking Pipeline: the tracker's constants (:class:`edge_reid.tracking.TrackerConfig`)
    and the Pipeline's (:mod:`edge_reid.defaults`)."""
    from edge_reid import defaults
    from edge_reid.tracking import TrackerConfig

    base = TrackerConfig()
    bounded = {"upper": 1.0}
    gate = {"upper": 1.0, "positive": True}  # an IoU gate: TrackerConfig refuses 0
    tracker_constants = {
        "high_score": bounded, "new_track_score": bounded, "low_score": bounded, "min_iou": gate,
        "proximity": gate, "appearance_thresh": bounded, "veto_similarity": bounded,
        "confirm_hits": {"integer": True}, "max_lost_s": {}, "overlap": bounded, "tentative_gate_chi2": {},
    }
    pipeline_constants = {"threshold": bounded, "reid_threshold": bounded, "unnamed_reid_threshold": bounded, "refresh_s": {}}
    constants = tuple(Constant(name, float(getattr(base, name)), **options) for name, options in tracker_constants.items())
    constants += (
        Constant("threshold", float(defaults.THRESHOLD), upper=1.0),
        Constant("reid_threshold", float(defaults.REID_THRESHOLD), upper=1.0),
        Constant("unnamed_reid_threshold", float(defaults.UNNAMED_REID_THRESHOLD), upper=1.0),
        Constant("refresh_s", float(defaults.REFRESH_S)),
    )
    shared: dict = {}

    def build(overrides: dict, context: bench.BuildContext) -> bench.BenchTracker:
        if "embedder" not in shared:
            shared["embedder"] = FrameMemoEmbedder(context.model())
        tracker = {k: (int(v) if k == "confirm_hits" else v) for k, v in overrides.items() if k in tracker_constants}
        pipeline = {k: v for k, v in overrides.items() if k in pipeline_constants}
        return bench.EdgeReidTracker(shared["embedder"], tracker, pipeline)

    return Subject("edge-reid", bench.EdgeReidTracker.label, constants, build, lambda: None)


def _subjects() -> dict[str, tuple[Callable[[], Subject], Callable[[], str | None]]]:
    """Known subjects: ``name -> (make, missing)``."""
    trackers_missing = bench._missing_module("trackers", "pip install '.[bench]'")
    return {
        "edge-reid": (_edge_reid_subject, bench._always_available),
        "rf-bytetrack": (
            _roboflow_subject(
                "rf-bytetrack",
                "ByteTrack (trackers)",
                "ByteTrackTracker",
                {
                    "lost_track_buffer": {"integer": True},
                    "track_activation_threshold": {"upper": 1.0},
                    "minimum_consecutive_frames": {"integer": True},
                    "minimum_iou_threshold": {"upper": 1.0},
                    "high_conf_det_threshold": {"upper": 1.0},
                },
            ),
            trackers_missing,
        ),
    }


DEFAULT_SUBJECT = "edge-reid"


@dataclass(frozen=True)
class Setting:
    """One configuration: the default (``constant`` None) or one constant at ``factor`` x default."""

    constant: str | None
    factor: float | None
    value: float | None
    bounded: bool = False

    @property
    def key(self) -> str:
        return "default" if self.constant is None else f"{self.constant} x{self.factor:g}"


def settings_for(subject: Subject, only: list[str] | None = None, factors: tuple[float, ...] = FACTORS) -> list[Setting]:
    """The default, then each chosen constant at each factor times its default (halved and doubled).

    Raises:
        bench.BenchError: ``only`` names a constant the subject does not have.
    """
    names = [c.name for c in subject.constants]
    if only:
        unknown = [name for name in only if name not in names]
        if unknown:
            raise bench.BenchError(f"{subject.name} has no constant(s) {', '.join(unknown)}; its constants: {', '.join(names)}")
    settings = [Setting(None, None, None)]
    for constant in subject.constants:
        if only and constant.name not in only:
            continue
        for factor in factors:
            value, bounded = constant.varied(factor)
            if constant.positive and value <= 0:
                print(f"note: {constant.name} x{factor:g} left out: the tracker refuses {value:g} (it must be > 0)", file=sys.stderr)
                continue
            settings.append(Setting(constant.name, factor, value, bounded))
    return settings


def run_sensitivity(
    subject: Subject,
    sequence: bench.Sequence,
    ground_truth: bench.GroundTruth,
    settings: list[Setting],
    progress: bool = True,
    base: dict | None = None,
) -> list[dict]:
    """Run every setting on the same detections, interleaved; HOTA/IDF1 and their change from the default per setting.

    Args:
        base: overrides applied to every setting (the "default" row is then the subject's defaults
            changed by ``base``); a setting's own constant wins over ``base``.
    """
    context = bench.BuildContext(sequence.fps)
    trackers = []
    for index, setting in enumerate(settings):
        overrides = dict(base or {})
        if setting.constant is not None:
            overrides[setting.constant] = setting.value
        tracker = subject.build(overrides, context)
        tracker.name = f"s{index}"
        trackers.append(tracker)
    runs = bench.run_trackers(sequence, trackers, progress=progress)
    metrics = bench.score(runs, ground_truth, sequence)
    baseline = metrics["s0"]
    rows = []
    for index, (setting, tracker, run) in enumerate(zip(settings, trackers, runs)):
        result = metrics[f"s{index}"]
        pipeline = getattr(tracker, "pipeline", None)  # edge-reid's Pipeline counts the crops it asks to embed
        embedded = getattr(pipeline, "embeddings_total", None)
        rows.append(
            {
                "setting": setting.key,
                "constant": setting.constant,
                "factor": setting.factor,
                "value": setting.value,
                "bounded": setting.bounded,
                **{key: result[key] for key in bench.METRICS},
                "delta_HOTA": result["HOTA"] - baseline["HOTA"],
                "delta_IDF1": result["IDF1"] - baseline["IDF1"],
                "embeddings_per_frame": None if embedded is None else embedded / max(run.frames, 1),
            }
        )
    return rows


def format_rows(rows: list[dict], subject: Subject) -> str:
    """A Markdown table: setting, value, HOTA, IDF1 and their change from the default."""
    defaults = {c.name: c.default for c in subject.constants}
    lines = [
        "| setting | value | HOTA | IDF1 | DetA | AssA | ID sw. | emb./frame | change HOTA | change IDF1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["constant"] is None:
            value = "defaults"
        else:
            value = f"{row['value']:g} (default {defaults[row['constant']]:g}{', halfway to 1' if row['bounded'] else ''})"
        lines.append(
            f"| {row['setting']} | {value} | {row['HOTA']:.1f} | {row['IDF1']:.1f} | {row['DetA']:.1f} | {row['AssA']:.1f} "
            f"| {row['IDSW']:.0f} | {'-' if row['embeddings_per_frame'] is None else format(row['embeddings_per_frame'], '.2f')} "
            f"| {row['delta_HOTA']:+.1f} | {row['delta_IDF1']:+.1f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The harness's command line: bench_tracking.py's sequence options plus the subject."""
    parser = benchmark_parser(
        __doc__, video=False, prog="tracking_sensitivity.py", notes=f"subjects: {', '.join(_subjects())} (default {DEFAULT_SUBJECT})."
    )
    parser.add_argument("--subject", default=DEFAULT_SUBJECT, help=f"the tracker whose constants are varied: {', '.join(_subjects())}")
    parser.add_argument("--constants", help="comma-separated constants to vary (default: all of the subject's main constants)")
    parser.add_argument("--only-defaults", action="store_true", help="run the default configuration only (e.g. on --frame-step 2 or --scale 0.5)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="change a constant of the base configuration, for every row (repeatable), e.g. --set veto_similarity=-1",
    )
    parser.add_argument(
        "--factors", type=_factors, default=FACTORS, metavar="F1,F2,...",
        help="multiples of each default to run (default 0.5,2; 0 turns a gate or threshold off, where 0 means off)",
    )
    bench.add_sequence_arguments(parser)
    parser.add_argument("--every", dest="frame_step", type=bench._positive_int, help="the same as --frame-step")
    parser.add_argument("--cache", dest="cache_dir", type=_cache_folder, help="the same as --cache-dir (a file's folder is used)")
    return parser


def _factors(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not numbers: {text!r} (e.g. 0.5,2)") from None
    if not factors or any(not np.isfinite(f) or f < 0 for f in factors):
        raise argparse.ArgumentTypeError(f"factors must be finite and >= 0, got {text!r}")
    return factors


def _cache_folder(text: str) -> str:
    path = Path(text)
    return str(path.parent if path.suffix else path)


def parse_settings(subject: Subject, items: list[str]) -> dict:
    """``NAME=VALUE`` items of ``--set`` as overrides of the subject's constants.

    Raises:
        bench.BenchError: an unknown name or a value that is not a number.
    """
    known = {c.name: c for c in subject.constants}
    base = {}
    for item in items:
        name = item.partition("=")[0]
        if name not in known:
            raise bench.BenchError(f"--set: {subject.name} has no constant {name!r}; its constants: {', '.join(known)}")
        value = bench.number_setting(item)[1]
        base[name] = int(round(value)) if known[name].integer else value
    return base


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        subjects = _subjects()
        if args.subject not in subjects:
            raise bench.BenchError(f"unknown subject {args.subject}; known: {', '.join(subjects)}")
        make, missing = subjects[args.subject]
        reason = missing()
        if reason:
            raise bench.BenchError(f"{args.subject} cannot run here: {reason}")
        subject = make()
        only = [name.strip() for name in args.constants.split(",")] if args.constants else None
        base = parse_settings(subject, args.set)
        settings = settings_for(subject, only, args.factors)
        settings = settings[:1] if args.only_defaults else settings
        lowest = min((s.value for s in settings if s.constant == "low_score"), default=None)
        if lowest is not None and lowest < args.det_threshold:
            args.det_threshold = lowest  # a halved low_score needs the detections below the usual floor
        ground_truth, sequence = bench.resolve_inputs(args)
        rows = run_sensitivity(subject, sequence, ground_truth, settings, progress=not args.no_progress, base=base)
    except bench.EdgeReidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    changed = f"; base changed: {', '.join(args.set)}" if args.set else ""
    print(f"{subject.label} on {sequence.name}: {len(sequence.frames)} frames at {sequence.fps:g} fps ({sequence.conditions()}){changed}")
    print(format_rows(rows, subject))
    if args.json:
        document = {
            "schema": "edge-reid-tracking-sensitivity/1",
            "subject": subject.name,
            "constants": {c.name: c.default for c in subject.constants},
            "base_changes": base,
            "sequence": {"name": sequence.name, "frames": len(sequence.frames), "fps": sequence.fps, "settings": sequence.settings},
            "rows": rows,
            "peers": bench.peer_versions(),
        }
        bench.write_json(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
