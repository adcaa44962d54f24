"""The ``.edgereid`` gallery file: versioned, checksummed, written atomically.

Layout (all integers little-endian)::

    offset  size  field
    0       8     magic  b"EDGEREID"
    8       4     format version (uint32, currently 1)
    12      4     reserved (0)
    16      8     header length H in bytes (uint64)
    24      8     payload length P in bytes (uint64)
    32      32    SHA-256 of the H + P bytes that follow
    64      H     header: UTF-8 JSON object (model id, dtype, dim, identities, ...)
    64+H    P     payload: the embedding matrix, C order, dtype named in the header

The file length must be exactly 64 + H + P: a truncated or extended file is
rejected, as is any checksum mismatch, with a :class:`~edge_reid.errors.DataError`
that names the file. Nothing here ever deletes or replaces a file it could not
read.

Writes go to a temporary file in the same directory, which is flushed and
fsync'ed, then renamed over the target with :func:`os.replace` (atomic on
POSIX), and the directory is fsync'ed so the rename itself survives a power
loss. A process killed at any moment therefore leaves either the old file or
the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from edge_reid.atomic import atomic_write_bytes
from edge_reid.errors import DataError

MAGIC = b"EDGEREID"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIQQ32s")  # magic, version, reserved, header len, payload len, sha256
PREFIX_BYTES = _PREFIX.size  # 64
_DTYPES = {"float32": np.float32, "float16": np.float16}


def write_gallery_file(path: str | os.PathLike, header: dict[str, Any], payload: np.ndarray) -> None:
    """Atomically write ``header`` (JSON-able dict) and ``payload`` (2-D float32/float16) to ``path``.

    ``header`` gets ``payload_dtype`` and ``payload_shape`` added.

    Raises:
        OutputPathError: the directory does not exist or cannot be written.
        ValueError: payload of another dtype/rank.
    """
    path = Path(path)
    data = np.ascontiguousarray(payload)
    if data.ndim != 2 or data.dtype.name not in _DTYPES:
        raise ValueError(f"payload must be 2-D float32/float16, got {data.dtype} {data.shape}")
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    full_header = dict(header, payload_dtype=data.dtype.name, payload_shape=list(data.shape))
    header_bytes = json.dumps(full_header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    payload_bytes = data.tobytes(order="C")
    digest = hashlib.sha256()
    digest.update(header_bytes)
    digest.update(payload_bytes)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(header_bytes), len(payload_bytes), digest.digest())

    atomic_write_bytes(path, prefix, header_bytes, payload_bytes, what="gallery", create_parent=False)


def read_gallery_file(path: str | os.PathLike) -> tuple[dict[str, Any], np.ndarray]:
    """Read and verify a gallery file; returns (header dict, payload (rows, D) array).

    Raises:
        DataError: missing file, not a gallery file, a newer format version,
            truncated or corrupt (checksum) file, inconsistent header.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"gallery file {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read gallery file {path}: {exc.strerror or exc}") from exc
    if len(blob) < PREFIX_BYTES or not blob.startswith(MAGIC):
        if MAGIC.startswith(blob[: len(MAGIC)]) and len(blob) < PREFIX_BYTES:
            raise DataError(f"gallery file {path} is truncated ({len(blob)} bytes); restore it from a backup "
                            "or delete it to start an empty gallery")
        raise DataError(f"{path} is not an edge-reid gallery file (bad magic bytes)")
    magic, version, reserved, header_len, payload_len, checksum = _PREFIX.unpack_from(blob)
    if version > FORMAT_VERSION:
        raise DataError(f"gallery file {path} has format version {version}; this edge-reid reads up to "
                        f"version {FORMAT_VERSION}: upgrade edge-reid")
    if version < 1 or reserved != 0:
        raise DataError(f"gallery file {path} is corrupt (invalid version {version} or flags {reserved})")
    expected = PREFIX_BYTES + header_len + payload_len
    if len(blob) != expected:
        state = "truncated" if len(blob) < expected else "longer than its header says"
        raise DataError(f"gallery file {path} is {state} ({len(blob)} bytes, expected {expected}); restore it "
                        "from a backup or delete it to start an empty gallery")
    body = memoryview(blob)[PREFIX_BYTES:]
    if hashlib.sha256(body).digest() != checksum:
        raise DataError(f"gallery file {path} is corrupt (SHA-256 checksum mismatch); restore it from a backup "
                        "or delete it to start an empty gallery")
    try:
        header = json.loads(bytes(body[:header_len]).decode("utf-8"))
        dtype = np.dtype(_DTYPES[header["payload_dtype"]]).newbyteorder("<")
        rows, dim = (int(v) for v in header["payload_shape"])
        payload = np.frombuffer(body[header_len:], dtype=dtype)
        if payload.size != rows * dim:
            raise ValueError("payload size does not match payload_shape")
        payload = payload.reshape(rows, dim).astype(dtype.newbyteorder("="), copy=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DataError(f"gallery file {path} has an invalid header: {exc}") from exc
    if not isinstance(header, dict):
        raise DataError(f"gallery file {path} has an invalid header (not a JSON object)")
    return header, payload
