"""The :class:`Embedder`: person crops in, L2-normalised embeddings out, in batches."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from edge_reid.assets import DEFAULT_REID_MODEL
from edge_reid.closing import Closable
from edge_reid.backends import BackendOptions, EmbeddingBackend, check_count, create_backend
from edge_reid.batching import plan_sub_batches
from edge_reid.cpu import usable_cpu_count
from edge_reid.detections import box_rows
from edge_reid.errors import ModelError
from edge_reid.jit import cached_njit
from edge_reid.preprocess import CropPreprocessor
from edge_reid.spec import ModelSpec, legacy_model_ids, load_spec, model_id

#: Most threads preprocessing one batch: more gain nothing measurable for batches of <= 32 crops.
MAX_PREPROCESS_THREADS = 4


def default_preprocess_threads(model_threads: int | None) -> int:
    """Threads for preprocessing a batch: as many as the model's CPU threads, at most 4.

    The model and its preprocessing run one after the other, so preprocessing may use
    the cores the model uses. ``model_threads`` None (the backend's default, ONNX
    Runtime: every core) means every core this process may use.
    """
    cores = int(model_threads) if model_threads else usable_cpu_count()
    return max(1, min(cores, MAX_PREPROCESS_THREADS))


#: :func:`_normalize_rows_into`'s answers: every row normalised, a NaN/Inf value, an all-zero row.
ROWS_NORMALISED, ROW_NOT_FINITE, ROW_ALL_ZERO = 0, 1, 2


@cached_njit()
def _normalize_rows_into(source: np.ndarray, destination: np.ndarray) -> int:
    """L2-normalise each row of ``source`` into ``destination`` (the sum of squares in float64, so
    float32 values beyond ~1.8e19 do not overflow it); :data:`ROWS_NORMALISED`, or
    :data:`ROW_NOT_FINITE` / :data:`ROW_ALL_ZERO` at the first row that cannot be (the rest unwritten)."""
    rows, dim = source.shape
    for r in range(rows):
        total = 0.0
        for d in range(dim):
            value = np.float64(source[r, d])
            if not np.isfinite(value):
                return ROW_NOT_FINITE
            total += value * value
        if total == 0.0:
            return ROW_ALL_ZERO
        scale = 1.0 / np.sqrt(total)
        for d in range(dim):
            destination[r, d] = source[r, d] * scale
    return ROWS_NORMALISED


class Embedder(Closable):
    """Embeds person crops with a ReID model on a chosen backend.

    Crops are preprocessed straight into the backend's batch buffer; more crops
    than ``max_batch`` are split into sub-batches (never dropped). The model runs once
    at load on a grey crop: a file that is not a ReID model of the spec's shape
    ((N, D) finite output) is refused then, before any work starts.

    Safe to share between threads: the backend's buffers are bound once, so calls from
    several threads run one after another (a lock); for embedding in parallel, make one
    Embedder per thread.

    Args:
        model_path: ReID ``.onnx`` file (default: the bundled OSNet x0.25).
        backend: ``"onnxruntime"`` (default), ``"openvino"``, ``"tensorrt"`` or ``"auto"``
            (see :func:`~edge_reid.backends.create_backend`), or a backend already made for
            this model and spec (``max_batch`` then does not apply, nor do ``threads`` and ``backend_options``
            to the model: ``threads`` still sets the preprocessing threads, and ``backend_options`` is still checked).
        max_batch: largest batch per model call.
        threads: CPU threads of the model (None: the runtime's default, or its share of the
            cores with ``backend_options={"side_by_side": True}``).
        preprocess_threads: threads that resize and normalise a batch of crops
            (None: :func:`default_preprocess_threads` of ``threads``).
        spec: a :class:`ModelSpec` to use instead of resolving one from the file.
        backend_options: extra keyword arguments for :func:`~edge_reid.backends.create_backend`
            (``precision``, ``device``, ``side_by_side``; TensorRT: ``engines_dir``, ``rebuild``).

    Raises:
        ModelError: the model is missing, not an ONNX model, of the wrong input or
            output shape, or returns NaN/Inf (at load or later) or an all-zero embedding.
        BackendUnavailableError: the backend asked for cannot run here.
        ValueError: ``max_batch``, ``threads`` or ``preprocess_threads`` not a whole number >= 1, an
            unknown ``backend`` name, or an unknown key or ``precision`` in ``backend_options``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        backend: str | EmbeddingBackend = "onnxruntime",
        max_batch: int = 32,
        threads: int | None = None,
        spec: ModelSpec | None = None,
        backend_options: dict | None = None,
        preprocess_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else DEFAULT_REID_MODEL
        self.spec = spec or load_spec(self.model_path)
        check_count(preprocess_threads, "preprocess_threads")
        unknown = sorted(set(backend_options or {}) - {field.name for field in dataclasses.fields(BackendOptions)})
        if unknown:
            raise ValueError(
                f"unknown backend_options {', '.join(map(repr, unknown))}; the options are "
                f"{', '.join(field.name for field in dataclasses.fields(BackendOptions))}"
            )
        if isinstance(backend, EmbeddingBackend):
            self.backend: EmbeddingBackend = backend
        else:
            self.backend = create_backend(
                backend, self.model_path, self.spec, max_batch=max_batch, threads=threads, **(backend_options or {})
            )
        self.preprocessor = CropPreprocessor(
            self.spec, self.backend.max_batch, threads=preprocess_threads or default_preprocess_threads(threads)
        )
        self._check_model()
        self._model_id: str | None = None
        #: seconds spent in the last call: {"preprocess": s, "embed": s} (embed includes normalising).
        self.last_seconds: dict[str, float] = {"preprocess": 0.0, "embed": 0.0}
        self._lock = threading.Lock()  # one call at a time fills and reads the shared buffers
        self._closed = False

    @property
    def dim(self) -> int:
        """Embedding length D."""
        return self.spec.embedding_dim

    @property
    def max_batch(self) -> int:
        """Largest batch of one model call."""
        return self.backend.max_batch

    @property
    def model_id(self) -> str:
        """The model's identity (:func:`edge_reid.spec.model_id`: its bytes and spec, not its file name);
        embeddings are comparable only under one model_id."""
        if self._model_id is None:
            self._model_id = model_id(self.model_path, self.spec)
        return self._model_id

    @property
    def earlier_model_ids(self) -> tuple[str, ...]:
        """Ids older edge-reid versions gave this same model (:func:`edge_reid.spec.legacy_model_ids`):
        galleries saved under them are still this model's (``Gallery.open(..., earlier_model_ids=...)``)."""
        return legacy_model_ids(self.model_path, self.spec)

    def _check_model(self) -> None:
        """One real inference of one mid-grey crop: output (1, D) and finite, else a ModelError naming the file."""
        grey = np.full((self.spec.height, self.spec.width, 3), 128, np.uint8)
        self.preprocessor.write_crops([grey], self.backend.buffers.input)
        try:
            raw = self.backend.infer(1)
        except ModelError as exc:
            raise ModelError(f"{exc} (is {self.model_path.name} a ReID model taking {self.spec.height}x{self.spec.width} crops?)") from None
        if raw.ndim != 2 or raw.shape != (1, self.dim):
            raise ModelError(f"{self.model_path}: a test inference returned shape {raw.shape}, not (1, {self.dim}) embeddings")
        if not np.isfinite(raw).all():
            raise ModelError(
                f"{self.model_path}: the model returned NaN or Inf on a test crop; check the model file and its "
                f"preprocessing spec (a sidecar {self.model_path.with_suffix('.json').name} may be needed)"
            )

    def _output(self, count: int, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            return np.empty((count, self.dim), np.float32)
        if out.dtype != np.float32 or out.ndim != 2 or out.shape[0] < count or out.shape[1] != self.dim:
            raise ValueError(f"out must be (>={count}, {self.dim}) float32, got {out.shape} {out.dtype}")
        if not out.flags.writeable:
            raise ValueError(f"out is read-only: pass a writeable (>={count}, {self.dim}) float32 array, or None")
        return out[:count]

    def _embed(self, count: int, fill, out: np.ndarray | None) -> np.ndarray:
        with self._lock:
            if self._closed:
                raise ValueError(f"this Embedder ({self.model_path.name}) was closed: make a new one")
            result = self._output(count, out)
            model_input = self.backend.buffers.input
            preprocess_s = embed_s = 0.0
            for start, stop in plan_sub_batches(count, self.backend.max_batch):
                t0 = time.perf_counter()
                fill(start, stop, model_input)
                t1 = time.perf_counter()
                raw = self.backend.infer(stop - start)
                outcome = _normalize_rows_into(raw, result[start:stop])
                t2 = time.perf_counter()
                preprocess_s += t1 - t0
                embed_s += t2 - t1
                if outcome != ROWS_NORMALISED:
                    what = "NaN or Inf embeddings" if outcome == ROW_NOT_FINITE else "an all-zero embedding (no direction to compare)"
                    raise ModelError(
                        f"{self.model_path}: the model returned {what}; check the model file and its "
                        f"preprocessing spec (a sidecar {self.model_path.with_suffix('.json').name} may be needed)"
                    )
            self.last_seconds = {"preprocess": preprocess_s, "embed": embed_s}
            return result

    def embed_boxes(self, frame: np.ndarray, boxes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Embed the people inside ``boxes`` of one frame.

        Args:
            frame: (H, W, 3) uint8 BGR image.
            boxes: (N, 4) x1, y1, x2, y2 in pixels, inside the frame with positive
                size (use :func:`edge_reid.detections.sanitize_boxes` on boxes from elsewhere).
            out: optional (>= N, D) float32 array to write into (avoids an allocation).

        Returns:
            (N, D) float32, each row L2-normalised (a view of ``out`` when given).

        Raises:
            ValueError: ``frame`` is not a non-empty (H, W, 3) uint8 array, ``boxes`` is not (N, 4), an
                empty box, or a bad ``out``; the embedder was closed.
            ModelError: the model returned NaN/Inf or an all-zero row.
        """
        boxes = box_rows(boxes)
        return self._embed(len(boxes), lambda a, b, buf: self.preprocessor.write_boxes(frame, boxes[a:b], buf), out)

    def embed_crops(self, crops: Iterable[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """Embed already-cut person crops.

        Args:
            crops: N BGR uint8 images (h, w, 3), any size: a list, a tuple, an (N, h, w, 3) array or
                any iterable of them (a generator is read once).
            out: optional (>= N, D) float32 array to write into.

        Returns:
            (N, D) float32, each row L2-normalised.

        Raises:
            ValueError: a crop is empty or not (h, w, 3) uint8; ``crops`` is one image, not N of
                them (pass ``[crop]``); the embedder was closed.
            ModelError: the model returned NaN/Inf or an all-zero row.
        """
        if isinstance(crops, np.ndarray) and crops.ndim != 4:
            raise ValueError(f"crops must be N images, got one array of shape {crops.shape}: pass a list, e.g. [crop]")
        if not isinstance(crops, (list, tuple, np.ndarray)):
            crops = list(crops)
        return self._embed(len(crops), lambda a, b, buf: self.preprocessor.write_crops(crops[a:b], buf), out)

    def close(self) -> None:
        """Release the backend and the preprocessing threads. Safe to call twice; embedding afterwards is a ValueError."""
        with self._lock:
            self._closed = True
        self.preprocessor.close()
        self.backend.close()
