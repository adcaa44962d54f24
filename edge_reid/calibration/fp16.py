"""FP16 model for backends that need an explicit half-precision ONNX file (ONNX Runtime's GPU providers).

TensorRT makes FP16 itself at build time and does not need this file.
Conversion: ``onnxconverter_common.float16.convert_float_to_float16`` with
``keep_io_types=True``, so the model still takes and returns float32 and drops
in wherever the FP32 model was used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx

from edge_reid.errors import ModelError


def convert_fp16(model: onnx.ModelProto, out_path: str | Path, source: str | Path | None = None) -> Path:
    """Write the FP16 version of ``model`` (float32 inputs/outputs kept) to ``out_path``.

    A model with several outputs is converted as it is (onnxconverter-common leaves a layer that reads
    another graph output with mixed float32/FP16 inputs, e.g. a classifier after the embedding):
    ``edge-reid calibrate`` first cuts the model down to its embedding output.

    Args:
        model: the FP32 model.
        out_path: where the FP16 model is written.
        source: the file ``model`` was read from, named in errors.

    Raises:
        ModelError: onnxconverter-common is not installed or the conversion fails (names ``source``).
    """
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ModelError("FP16 conversion needs onnxconverter-common: pip install onnxconverter-common") from None
    try:
        # It warns once per tensor holding values below FP16's range (flushed to 1e-7): hundreds of
        # lines on a ReID net. What the flushing costs is measured by the check that follows.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            converted = float16.convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{source}: FP16 conversion failed: {reason}" if source else f"FP16 conversion failed: {reason}") from None
    out_path = Path(out_path)
    onnx.save(converted, str(out_path))
    return out_path
