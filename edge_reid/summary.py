"""The summary of one run: counts, throughput and mean milliseconds per stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        source: the source as given.
        frames: frames processed.
        seconds: wall-clock seconds of the loop (model loading excluded).
        fps: frames per second over ``seconds``.
        identities: identities in the gallery at the end.
        tracks: tracks confirmed over the run (people followed without a break).
        people: tracked people reported over all frames (one per person and frame).
        detections: people the detector found over all frames, before tracking.
        embeddings: crops embedded by the ReID model over the run.
        embeddings_per_frame: ``embeddings / frames``.
        corrupt_frames: frames or images that could not be decoded and were skipped.
        skipped_boxes: boxes dropped as empty, outside the frame or too small (shorter than
            ``min_box_height``, in the detector or the pipeline).
        min_box_height: the height in pixels below which people were skipped (``--min-box-height``).
        reconnects: times a live source was reopened after dropping.
        dropped_frames: live sources: frames read but not processed because a newer one had
            arrived when the loop asked for a frame (the loop was slower than the source; 0 with
            ``--all-frames``).
        source_gave_up: True when a live source stayed down past the reconnect timeout.
        declared_frames: frames the video file's header declares, or images listed in a folder
            (one pass); None for live sources and files that declare none.
        ended_at_frame: where a video file ended early (0-based frame position in the file), else None.
        end_reason: ``"truncated"`` (the file's data ends there), ``"corrupt_limit"``
            (``corrupt_limit`` undecodable frames in a row) or ``"gone"`` (``--repeat``: the file or
            folder could not be read again); None when the source ended normally.
        end_message: the early end in words, ``"ended at frame 399 of 795: file truncated?"``, else None.
        corrupt_limit: undecodable frames in a row that end a video file; None for other sources.
        skipped_files: image-folder sources: each image skipped, ``{"file": name, "reason": why}``.
        passes: complete passes over a file or folder (``--repeat``).
        write_errors: outputs that failed while being written (one line each, naming the file
            and the cause); empty when every output was written.
        interrupted: True when Ctrl-C/SIGTERM (SIGHUP too in ``edge-reid run``), :meth:`~edge_reid.runner.Runner.stop`
            or the window's q ended the run.
        stage_ms: mean milliseconds per frame for decode, detect, preprocess, embed, track, match.
        backend: the embedding backend, e.g. ``onnxruntime (CPU, 1 thread), graph level extended (tuned)``.
        model: the ReID model file.
        detector: the detector model file.
        camera_motion: True when the tracker compensated camera motion (``--no-camera-motion``: False).
    """

    source: str
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    identities: int = 0
    tracks: int = 0
    people: int = 0
    detections: int = 0
    embeddings: int = 0
    embeddings_per_frame: float = 0.0
    corrupt_frames: int = 0
    skipped_boxes: int = 0
    min_box_height: float = 0.0
    reconnects: int = 0
    dropped_frames: int = 0
    source_gave_up: bool = False
    declared_frames: int | None = None
    ended_at_frame: int | None = None
    end_reason: str | None = None
    end_message: str | None = None
    corrupt_limit: int | None = None
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    passes: int = 0
    write_errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    stage_ms: dict[str, float] = field(default_factory=dict)
    backend: str = ""
    model: str = ""
    detector: str = ""
    camera_motion: bool = False

    def to_dict(self) -> dict:
        """JSON-ready dict, floats rounded for reading."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["fps"] = round(self.fps, 2)
        data["embeddings_per_frame"] = round(self.embeddings_per_frame, 3)
        data["stage_ms"] = {stage: round(ms, 2) for stage, ms in self.stage_ms.items()}
        return data
