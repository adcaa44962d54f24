"""Person detector: YOLOX on any backend (ONNX Runtime, OpenVINO), with letterbox, grid decode, NMS and box sanitising.

Decoding follows YOLOX (Z. Ge et al., "YOLOX: Exceeding YOLO Series in 2021",
``yolox/utils/demo_utils.py::demo_postprocess``): for each stride s in (8, 16, 32)
and grid cell (gx, gy): ``xy = (out_xy + (gx, gy)) * s``, ``wh = exp(out_wh) * s``,
``score = objectness * class_probability``. Input is BGR 0..255, letterboxed at
the top-left corner and padded with 114.

Rectangular input (on by default): the network is convolutional, so instead of the model's full
square (416x416 for YOLOX-Nano) it runs on the smallest rectangle of multiples of its largest stride
that holds the frame letterboxed at the same scale (height x width): a 4:3 landscape frame at
320x416, a 16:9 one at 256x416, with the same resize and fewer padded rows to compute. This is YOLOv5's rectangular inference
(``letterbox(..., auto=True)`` in ultralytics/yolov5 ``utils/augmentations.py``). The rectangle is
chosen from the first frame; a later frame of another shape that fits it at the same scale is
letterboxed into it, and the first one that does not (a portrait image in a folder of landscape
ones) sends the detector back to the model's full input for good, so that no frame is ever seen
smaller than the full input would show it.

The full input itself can be made larger (or smaller) than the model file's own with
``input_size`` (``edge-reid run --detector-size``): the long side in pixels, the model's aspect kept.
"""

from __future__ import annotations

import math
import numbers
import threading
from pathlib import Path

import cv2
import numpy as np

from edge_reid.assets import DEFAULT_DETECTOR
from edge_reid.closing import Closable
from edge_reid.backends import DetectorBackend, create_detector_backend
from edge_reid.defaults import DETECTOR_MAX_INPUT_SIZE, MIN_BOX_HEIGHT
from edge_reid.data.images import check_bgr_image
from edge_reid.detections import Detections, sanitize_boxes
from edge_reid.errors import ModelError
from edge_reid.thresholds import at_least

PERSON_CLASS = 0
PAD_VALUE = 114
#: YOLOX's largest stride (pixels): input sizes must be multiples of it.
MAX_STRIDE = 32


def check_input_size(value) -> int:
    """``value`` as a detector input size in pixels: a whole number, a multiple of 32, from 32 to :data:`~edge_reid.defaults.DETECTOR_MAX_INPUT_SIZE`.

    Raises:
        ValueError: anything else (a bool, a string, NaN, a fraction, out of range), naming the value.
    """
    size = None
    if isinstance(value, (numbers.Real, np.ndarray)) and not isinstance(value, (bool, np.bool_)) and np.ndim(value) == 0:
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            size = int(number)
    if size is None or not MAX_STRIDE <= size <= DETECTOR_MAX_INPUT_SIZE or size % MAX_STRIDE:
        raise ValueError(
            f"input_size must be a whole number of pixels, a multiple of {MAX_STRIDE} from {MAX_STRIDE} to {DETECTOR_MAX_INPUT_SIZE} "
            f"(e.g. 416, 640), got {value!r}"
        )
    return size


def rectangular_input(frame_height: int, frame_width: int, model_height: int, model_width: int, stride: int = MAX_STRIDE) -> tuple[int, int]:
    """The smallest input (height, width), multiples of ``stride`` and within the model's size, that
    holds a frame letterboxed at the scale the model's full input would give it.

    E.g. a 576x768 frame for a 416x416 model: scale 416/768, 312x416 pixels, input 320x416.

    Args:
        frame_height, frame_width: the frame in pixels.
        model_height, model_width: the model's own input size in pixels.
        stride: the network's largest stride in pixels.

    Returns:
        (height, width) in pixels.
    """
    ratio = min(model_height / frame_height, model_width / frame_width)
    height = max(1, int(round(frame_height * ratio)))
    width = max(1, int(round(frame_width * ratio)))
    return (min(model_height, -(-height // stride) * stride), min(model_width, -(-width // stride) * stride))


def yolox_grids(input_height: int, input_width: int, strides=(8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Grid offsets and strides of YOLOX's flattened output.

    Args:
        input_height, input_width: the network's input size in pixels (multiples of the largest stride).
        strides: the output levels' strides in pixels (YOLOX: 8, 16, 32).

    Returns:
        ``(grid, stride)``: (A, 2) float32 cell (x, y) offsets and (A, 1) float32
        strides in pixels, A = sum over strides of (H/s) * (W/s).
    """
    grids, expanded = [], []
    for stride in strides:
        rows, cols = input_height // stride, input_width // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack((xs, ys), axis=2).reshape(-1, 2))
        expanded.append(np.full((rows * cols, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def is_decoded_output(output: np.ndarray, grid: np.ndarray, strides: np.ndarray) -> bool:
    """Whether a YOLOX output holds boxes already decoded to input pixels (an export with
    ``decode_in_inference=True``) rather than the grid output this module decodes.

    The grid output's box centres are offsets from each cell, in cells (a few at most); decoded, they are
    pixel positions, ``(offset + cell) * stride``, around the cells' pixel centres. So the output is
    decoded when its centres lie nearer the cells' pixel centres than the origin, median distances over
    all anchors compared: both forms of the bundled YOLOX-Nano, on blank and real frames from the smallest
    input (32x32) up, fall far on either side (tests/test_detector_decoded.py).

    Args:
        output: (A, 5 + classes) float32, the model's output on one image.
        grid, strides: from :func:`yolox_grids` for the model's input.

    Returns:
        True for a decoded output.
    """
    centres = output[:, :2]
    cell_centres = (grid + 0.5) * strides
    return bool(np.median(np.abs(centres - cell_centres)) < np.median(np.abs(centres)))


class PersonDetector(Closable):
    """Finds people in BGR frames with a YOLOX ONNX model.

    The model runs once at load on a blank input: a file that is not a YOLOX-shaped
    detector (output (1, A, 5 + classes) for the grid of its input size, finite values)
    is refused then, before any frame is read, and so is a YOLOX exported with its boxes
    already decoded to pixels (``decode_in_inference=True``; see :func:`is_decoded_output`):
    this class decodes the grid output itself.

    Args:
        model_path: YOLOX ``.onnx`` (default: the bundled YOLOX-Nano, 416x416).
        score_threshold: minimum objectness x person probability, in [0, 1].
        nms_iou: IoU above which the lower-scoring of two boxes is suppressed.
        min_box_height: boxes shorter than this many pixels are dropped (too
            small to re-identify).
        threads: CPU threads of the model (None: the runtime's default, or its share of the
            cores with ``side_by_side``).
        backend: ``"onnxruntime"`` (default), ``"openvino"``, ``"auto"``, or ``"tensorrt"``
            (which runs only the ReID model: the detector then runs on the best CPU backend);
            see :func:`edge_reid.backends.create_detector_backend`.
        device: OpenVINO device (None: CPU).
        side_by_side: the ReID model computes on the CPU while the detector runs (the loop's
            worker thread); see :class:`edge_reid.backends.BackendOptions`.
        rectangular: run on the smallest rectangle that holds the first frame (see the module's
            docstring); False: always the model's full input. A model that cannot run at another
            size keeps its own (:attr:`rectangular_note` says why).
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (OpenVINO only, where the
            device computes in it): faster on CPUs with AMX or AVX512-BF16; boxes and scores
            move slightly, and a box near the score threshold may appear or vanish
            (docs/benchmarks.md measures what it costs the tracking).
        input_size: the long side of the network's input in pixels, a multiple of 32 up to
            2048 (None: the model's own, 416 for YOLOX-Nano; the other side scales with it).
            A frame is letterboxed to fit it, so a larger input shows the detector people larger,
            for cameras whose people are small in the frame (a high mounting, a wide view, HD
            frames); the work grows with the input's area (640 has 2.4x the pixels of 416).
            docs/tracking.md measures what it changes and costs.

    Raises:
        ModelError: the file is missing, not a model, or not a YOLOX-shaped detector; its output is already
            decoded to pixel boxes (exported with ``decode_in_inference=True``); the model could not be run
            at ``input_size``.
        ValueError: unknown ``precision`` or backend name; ``score_threshold`` or ``nms_iou`` outside
            [0, 1]; ``min_box_height`` negative; ``input_size`` not a whole number of pixels, a multiple of
            32, from 32 to 2048.
        BackendUnavailableError: the backend asked for cannot run here, or cannot compute in
            ``precision``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.35,
        nms_iou: float = 0.45,
        min_box_height: float = MIN_BOX_HEIGHT,
        threads: int | None = None,
        backend: str = "onnxruntime",
        device: str | None = None,
        side_by_side: bool = False,
        rectangular: bool = True,
        precision: str = "fp32",
        input_size: int | None = None,
    ) -> None:
        for name, value in (("score_threshold", score_threshold), ("nms_iou", nms_iou)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not float(min_box_height) >= 0.0:
            raise ValueError(f"min_box_height must be >= 0 pixels, got {min_box_height}")
        if input_size is not None:
            input_size = check_input_size(input_size)
        self._lock = threading.Lock()  # one frame at a time fills the input and decodes the output
        self.model_path = Path(model_path) if model_path else DEFAULT_DETECTOR
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.min_box_height = float(min_box_height)
        self._open = lambda input_size=None: create_detector_backend(
            backend, self.model_path, threads=threads, device=device, side_by_side=side_by_side, input_size=input_size,
            precision=precision,
        )
        self._use(self._open())
        self._file_size = (self.input_height, self.input_width)  # the model file's own input size
        if input_size is not None and input_size != max(self.input_height, self.input_width):
            self._use_size(input_size)
        # The full input: frames are letterboxed to fit it (a rectangle within it after the first frame).
        self.model_height, self.model_width = self.input_height, self.input_width
        #: why the detector kept the model's full input for a rectangular first frame, or "".
        self.rectangular_note = ""
        self._fit_pending = bool(rectangular)
        self._frame_shape: tuple[int, int] | None = None  # the last frame shape checked against the rectangle
        #: the scale at which the network saw the last frame (input / frame size; 0.22 for a 1920x1080 frame at
        #: 416), or None before the first frame: below 1 people reach the detector smaller than they are.
        self.frame_scale: float | None = None
        self._closed = False

    def _use(self, backend: DetectorBackend) -> None:
        """Run on ``backend`` from now on, once its output on the blank input (from its run at load) is a
        finite YOLOX grid output, not boxes already decoded to pixels.

        Raises:
            ModelError: it is not; ``backend`` is closed.
        """
        height, width = backend.input.shape[2:]
        grid, strides = yolox_grids(height, width)
        output = backend.output
        problem = ""
        if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] != grid.shape[0] or output.shape[2] < 5 + PERSON_CLASS + 1:
            problem = (
                f"output shape {tuple(output.shape)} is not a YOLOX grid output (1, {grid.shape[0]}, 5 + classes) "
                f"for a {height}x{width} input: is this a YOLOX person detector?"
            )
        elif not np.isfinite(output).all():
            problem = "the detector returned NaN or Inf on a blank image; check the model file"
        elif is_decoded_output(output[0], grid, strides):
            problem = (
                "its output is already decoded to pixel boxes (a YOLOX export with decode_in_inference=True), "
                "and edge-reid decodes YOLOX's grid output itself, which would give nonsense boxes: export the model "
                "again without decoding (YOLOX's tools/export_onnx.py without --decode_in_inference, or "
                "model.head.decode_in_inference = False before torch.onnx.export)"
            )
        if problem:
            backend.close()
            raise ModelError(f"{self.model_path}: {problem}")
        self.backend: DetectorBackend = backend
        self.input_height, self.input_width = height, width
        self.grid, self.strides = grid, strides
        # The letterbox canvas (H, W, 3) uint8; the backend's input is the (1, 3, H, W) float32 tensor.
        self._canvas = np.full((height, width, 3), PAD_VALUE, np.uint8)
        self._tensor = backend.input

    def _use_size(self, long_side: int) -> None:
        """Run at an input whose long side is ``long_side`` pixels, the model's aspect kept (sides rounded up to 32).

        Raises:
            ModelError: the model does not run at that size.
        """
        scale = long_side / max(self.input_height, self.input_width)
        size = tuple(-(-int(round(side * scale)) // MAX_STRIDE) * MAX_STRIDE for side in (self.input_height, self.input_width))
        current = self.backend
        try:
            resized = self._open(size)
        except ModelError as exc:
            reason = str(exc).removeprefix(f"{self.model_path}: ")
            raise ModelError(
                f"{self.model_path}: could not be run at input {size[0]}x{size[1]} ({reason}); use its own size, "
                f"{self.input_height}x{self.input_width} (leave out --detector-size / input_size), or another model export"
            ) from None
        try:
            self._use(resized)
        except ModelError:
            current.close()
            raise
        current.close()

    def _fit(self, frame_height: int, frame_width: int) -> None:
        """Move to the rectangular input for frames of this size (once); keep the full input if the model cannot."""
        self._fit_pending = False
        self._frame_shape = (frame_height, frame_width)
        size = rectangular_input(frame_height, frame_width, self.model_height, self.model_width)
        if size == (self.input_height, self.input_width):
            return
        self._switch(size, f"it does not run at {size[0]}x{size[1]}")

    def _keep_scale(self, frame_height: int, frame_width: int) -> None:
        """Back to the model's full input for good when a frame of a new shape does not fit the
        rectangle at the scale the full input gives it."""
        self._frame_shape = (frame_height, frame_width)
        rectangle = (self.input_height, self.input_width)
        if rectangle == (self.model_height, self.model_width):
            return
        needed = rectangular_input(frame_height, frame_width, self.model_height, self.model_width)
        if needed[0] <= rectangle[0] and needed[1] <= rectangle[1]:
            return
        full = (self.model_height, self.model_width)
        self._switch(None if full == self._file_size else full, "the full input failed to load again")
        if (self.input_height, self.input_width) == (self.model_height, self.model_width):
            self._frame_shape = None  # no more checks: the full input holds every frame at its scale
            self.rectangular_note = (
                f"back to the full {self.model_height}x{self.model_width} input: a {frame_height}x{frame_width} frame "
                f"does not fit {rectangle[0]}x{rectangle[1]}"
            )

    def _switch(self, size: tuple[int, int] | None, failure: str) -> None:
        """Run on a backend opened at ``size`` (None: the model's own); on failure keep the current one and say why."""
        current = self.backend
        try:
            self._use(self._open(size))
        except ModelError as exc:
            self.rectangular_note = f"kept its {self.input_height}x{self.input_width} input: {failure} ({exc})"
            return
        current.close()

    def _letterbox(self, frame: np.ndarray) -> float:
        """Write the letterboxed frame into the input tensor; returns the resize ratio."""
        height, width = frame.shape[:2]
        ratio = min(self.input_height / height, self.input_width / width)
        new_w, new_h = max(1, int(round(width * ratio))), max(1, int(round(height * ratio)))
        self._canvas[:] = PAD_VALUE
        cv2.resize(frame, (new_w, new_h), dst=self._canvas[:new_h, :new_w], interpolation=cv2.INTER_LINEAR)
        np.copyto(self._tensor[0], self._canvas.transpose(2, 0, 1), casting="unsafe")
        return ratio

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect people in one frame.

        Args:
            frame: (H, W, 3) uint8 BGR image, any numpy layout (views, read-only, memmap: see
                :func:`~edge_reid.data.images.check_bgr_image`).

        Returns:
            :class:`Detections` with boxes in frame pixels, clipped to the frame,
            sorted by descending score.

        Safe to call from several threads (one camera each): the calls take turns, as the detector
        letterboxes into one input buffer and decodes one output (two threads at once got each other's boxes).

        Raises:
            ValueError: ``frame`` is not a non-empty (H, W, 3) uint8 array (the message says how to convert
                it); the detector was closed.
        """
        with self._lock:
            return self._detect(frame)

    def _detect(self, frame: np.ndarray) -> Detections:
        if self._closed:
            raise ValueError(f"this PersonDetector ({self.model_path.name}) was closed: make a new one")
        check_bgr_image(frame, "frame")
        if self._fit_pending:
            self._fit(frame.shape[0], frame.shape[1])
        elif self._frame_shape is not None and frame.shape[:2] != self._frame_shape:
            self._keep_scale(frame.shape[0], frame.shape[1])
        ratio = self._letterbox(frame)
        self.frame_scale = ratio
        raw = self.backend.run()[0]  # (A, 5 + classes)
        scores = raw[:, 4] * raw[:, 5 + PERSON_CLASS]
        candidates = np.flatnonzero(at_least(scores, self.score_threshold))  # in float32, as Detections stores scores
        if candidates.size == 0:
            return Detections.empty()
        chosen = raw[candidates]
        centers = (chosen[:, :2] + self.grid[candidates]) * self.strides[candidates]
        sizes = np.exp(chosen[:, 2:4]) * self.strides[candidates]
        boxes = np.concatenate((centers - sizes / 2, centers + sizes / 2), axis=1) / ratio
        scores = scores[candidates]
        boxes, keep = sanitize_boxes(boxes, frame.shape[0], frame.shape[1], self.min_box_height)
        heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
        too_small = len(self._suppress(boxes, scores, np.flatnonzero(~keep & (heights >= 1.0) & (widths >= 1.0))))
        kept = self._suppress(boxes, scores, np.flatnonzero(keep))
        if kept.size == 0:
            return Detections.empty(too_small)
        return Detections(boxes[kept].astype(np.float32), scores[kept].astype(np.float32), too_small=too_small)

    def _suppress(self, boxes: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The rows of ``boxes`` left by non-maximum suppression among ``rows``, highest score first."""
        if rows.size == 0:
            return rows
        xywh = np.concatenate((boxes[rows, :2], boxes[rows, 2:] - boxes[rows, :2]), axis=1)
        # The rows are at or above score_threshold already. NMSBoxes keeps only scores strictly above its own
        # threshold (which must be >= 0): given score_threshold, it dropped a box scored exactly at it.
        kept = rows[np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores[rows].tolist(), 0.0, self.nms_iou), np.int64).reshape(-1)]
        return kept[np.argsort(-scores[kept], kind="stable")]

    def describe(self) -> str:
        """One line naming the backend the detector runs on, its input and (after a frame) the scale it sees frames at."""
        pending = ", input fitted to the first frame" if self._fit_pending else ""
        scale = f", frames seen at {self.frame_scale:.2f}x" if self.frame_scale is not None else ""
        return self.backend.describe() + pending + scale + (f"; {self.rectangular_note}" if self.rectangular_note else "")

    def close(self) -> None:
        """Release the backend. Safe to call twice; detecting afterwards is a ValueError. A frame another
        thread is detecting is finished first (the calls take turns)."""
        with self._lock:
            self._closed = True
            self.backend.close()
