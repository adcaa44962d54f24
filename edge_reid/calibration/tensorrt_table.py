"""TensorRT calibration cache (the TensorRT 8.x implicit-quantization path).

The text format that TensorRT's ``IInt8Calibrator::writeCalibrationCache``
produces and ``readCalibrationCache`` accepts::

    TRT-8601-EntropyCalibration2
    images: 3c0f5c29
    /conv1/relu/Relu_output_0: 3c9a8c31
    ...

The first line names the TensorRT version and calibrator; each further line is
``tensor_name: hex`` where ``hex`` is the IEEE-754 bit pattern of the float32
scale ``amax / 127`` (symmetric INT8). Tensor names are the ONNX tensor names,
which TensorRT's ONNX parser keeps, of the FP32 model TensorRT calibrates
(``edge-reid calibrate`` maps its internal folded and centred tensors back to them).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from edge_reid.atomic import atomic_write_bytes


def scale_hex(amax: float) -> str:
    """8-digit hex of the float32 bits of ``amax / 127`` (TensorRT's cache encoding)."""
    scale = np.float32(max(float(amax), 1e-12) / 127.0)
    return f"{struct.unpack('>I', struct.pack('>f', scale))[0]:08x}"


def hex_scale(text: str) -> float:
    """Inverse of :func:`scale_hex`: the float32 scale a cache line encodes."""
    return struct.unpack(">f", struct.pack(">I", int(text, 16)))[0]


def write_tensorrt_table(
    amax: Mapping[str, float],
    path: str | Path,
    leave_out: Iterable[str] = (),
    header: str = "TRT-8601-EntropyCalibration2",
) -> Path:
    """Write a TensorRT calibration cache atomically.

    Args:
        amax: tensor name -> absolute range.
        path: the cache file to write.
        leave_out: tensors to omit, e.g. those only layers kept in float read, so
            TensorRT has no INT8 range for them and runs those layers in FP16/FP32
            (see :func:`tensors_for_table`).
        header: first line. TensorRT re-uses a cache only when its calibrator's
            algorithm matches; ``EntropyCalibration2`` matches
            ``IInt8EntropyCalibrator2``, the usual choice.

    Returns:
        ``path``.
    """
    skip = set(leave_out)
    lines = [header] + [f"{name}: {scale_hex(value)}" for name, value in sorted(amax.items()) if name not in skip and value > 0]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode(), what="TensorRT calibration table")


def read_tensorrt_table(path: str | Path) -> tuple[str, dict[str, float]]:
    """(header, tensor name -> scale) of a TensorRT calibration cache."""
    lines = Path(path).read_text().splitlines()
    scales = {}
    for line in lines[1:]:
        name, _, value = line.rpartition(": ")
        if name:
            scales[name] = hex_scale(value)
    return lines[0], scales


def tensors_for_table(model, int8_layers: Sequence[str]) -> tuple[set[str], set[str]]:
    """(tensors an INT8 layer reads or writes, tensors only float layers read) of a float ONNX model.

    An INT8 layer's outputs include the ReLU output after it (TensorRT fuses
    Conv+ReLU and names the fused layer's output after the ReLU's tensor). A
    tensor that both an INT8 and a float layer read needs its range.
    """
    quantized = set(int8_layers)
    needed: set[str] = set()
    float_inputs: set[str] = set()
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    constants = {init.name for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        if node.name in quantized:
            needed.add(node.input[0])
            needed.update(node.output)
            for reader in readers.get(node.output[0], []):
                if reader.op_type == "Relu":
                    needed.update(reader.output)
        else:
            float_inputs.add(node.input[0])
    return needed - constants, float_inputs - needed
