"""ONNX Runtime backend: the CPU default, and the reference every other backend is checked against.

Inputs and outputs are bound once per batch size with ONNX Runtime's IOBinding
to the backend's numpy buffers, so a call copies nothing in or out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_reid.backends.base import EmbeddingBackend
from edge_reid.batching import numpy_buffers
from edge_reid.errors import ModelError
from edge_reid.spec import ModelSpec


#: Stop ONNX Runtime's intra-op threads spinning when a run returns (see :func:`create_session`).
#: A module setting so that ``benchmarks/loop_spinning.py`` can compare both ways.
STOP_SPINNING_AFTER_RUN = True


def threads_per_model() -> int:
    """CPU threads for each of the two models (detector, ReID) when they run side by side.

    The main loop runs the detector in a worker thread while the ReID model embeds
    the previous frame, so each model gets half the cores (at least one). On 2 cores
    this measured 2-4x faster than both models taking every core in turn
    (``benchmarks/run_modes.py``, docs/benchmarks.md).
    """
    return max(1, (os.cpu_count() or 2) // 2)


def is_qdq_model(model_path: str | Path) -> bool:
    """True when the ONNX graph holds QuantizeLinear/DequantizeLinear nodes (an explicitly quantized model)."""
    import onnx

    try:
        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception:  # not readable as ONNX: let ONNX Runtime report it
        return False
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in graph.node)


def create_session(model_path: str | Path, threads: int | None = None, providers: list[str] | None = None):
    """An ``onnxruntime.InferenceSession`` for a model, with a clear error for bad files.

    Q/DQ (INT8) models run with ONNX Runtime's Q/DQ-to-integer-kernel fusion off,
    i.e. with the exact arithmetic their graph specifies (what TensorRT computes).
    On x86 CPUs without VNNI the fused u8s8 kernels saturate 16-bit partial sums
    and change results by far more than the quantization itself (bundled OSNet,
    naive Q/DQ, vtest crops: mean cosine to FP32 0.968 fused vs 0.991 exact). On
    such a CPU the exact path was also faster (OSNet, every conv INT8, batch 32,
    2 threads: 4.7 vs 6.7 ms/image; FP32 2.1): Q/DQ models are for TensorRT,
    ONNX Runtime runs them as the reference.

    The intra-op threads stop spinning when a run returns
    (``session.force_spinning_stop``, ONNX Runtime PR #11841). By default they
    busy-wait for the next run, and in our loop the next thing to run is our own
    code (matching, preprocessing): with 2 threads on 2 cores the spinning
    thread took a core from them. Stopping it, batch 32 against 10k identities
    (``benchmarks/loop_spinning.py``, medians of 4): match 8.7 -> 6.2 ms and
    preprocess 4.2 -> 3.0 ms per step, loop efficiency 0.84 -> 0.91. Spinning
    inside a run, between its operators, is kept.

    Args:
        model_path: the ``.onnx`` file.
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        providers: execution providers (default ``["CPUExecutionProvider"]``).

    Raises:
        ModelError: the file is missing or ONNX Runtime cannot load it.
    """
    import onnxruntime as ort

    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if STOP_SPINNING_AFTER_RUN:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if is_qdq_model(path):
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: ONNX Runtime cannot load this model: {first_line}") from None


class OnnxRuntimeBackend(EmbeddingBackend):
    """Embedding model on ONNX Runtime (CPU by default).

    Args:
        model_path: the ``.onnx`` file.
        spec: its :class:`ModelSpec`.
        max_batch: rows of the batch buffer; lowered to the model's batch size
            when the model fixes one.
        threads: intra-op threads (None: ONNX Runtime's default).
        providers: ONNX Runtime execution providers.

    Raises:
        ModelError: the model cannot be loaded, or its input/output names
            disagree with the spec.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        spec: ModelSpec,
        max_batch: int = 32,
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.session = create_session(model_path, threads=threads, providers=providers)
        inputs = {i.name: i for i in self.session.get_inputs()}
        if spec.input_name not in inputs:
            raise ModelError(f"{model_path}: no input named {spec.input_name!r} (inputs: {sorted(inputs)})")
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = spec.output_name or outputs[0]
        if self.output_name not in outputs:
            raise ModelError(f"{model_path}: no output named {self.output_name!r} (outputs: {outputs})")
        fixed_batch = inputs[spec.input_name].shape[0]
        if isinstance(fixed_batch, int) and fixed_batch > 0:
            max_batch = fixed_batch
        super().__init__(spec, numpy_buffers(spec, max_batch))
        self._fixed_batch = fixed_batch if isinstance(fixed_batch, int) and fixed_batch > 0 else None
        self._bindings: dict[int, object] = {}

    def _binding(self, n: int):
        binding = self._bindings.get(n)
        if binding is None:
            spec, buffers = self.spec, self.buffers
            binding = self.session.io_binding()
            binding.bind_input(
                spec.input_name, "cpu", 0, np.float32, [n, 3, spec.height, spec.width], buffers.input.ctypes.data
            )
            binding.bind_output(self.output_name, "cpu", 0, np.float32, [n, spec.embedding_dim], buffers.output.ctypes.data)
            self._bindings[n] = binding
        return binding

    def infer(self, n: int) -> np.ndarray:
        """Run the model on ``buffers.input[:n]``; see :meth:`EmbeddingBackend.infer`."""
        self._check_n(n)
        if self._fixed_batch is not None:
            n_run = self._fixed_batch  # a fixed-batch model always runs its full batch
        else:
            n_run = n
        try:
            self.session.run_with_iobinding(self._binding(n_run))
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {str(exc).strip().splitlines()[0]}") from None
        return self.buffers.output[:n]

    def describe(self) -> str:
        providers = ",".join(p.replace("ExecutionProvider", "") for p in self.session.get_providers())
        return f"onnxruntime ({providers})"

    def close(self) -> None:
        self._bindings.clear()
