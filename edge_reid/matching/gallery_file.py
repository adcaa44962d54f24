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
the new one, never a mix. A gallery holds people's embeddings, names and times (personal,
biometric-like data): a new file is readable by its owner only (0600 less the umask), and a
file replaced keeps its permissions (:func:`edge_reid.atomic.take_permissions_of`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_reid.atomic import atomic_write_bytes
from edge_reid.errors import DataError
from edge_reid.unit_vectors import first_non_unit_row
from edge_reid.values import MAX_TIMESTAMP_S, is_integer, is_real

#: ``kind`` in the header of a gallery file.
GALLERY_KIND = "edge-reid gallery"
MAGIC = b"EDGEREID"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIQQ32s")  # magic, version, reserved, header len, payload len, sha256
PREFIX_BYTES = _PREFIX.size  # 64
_DTYPES = {"float32": np.float32, "float16": np.float16}


def write_gallery_file(path: str | os.PathLike, header: dict[str, Any], payload: np.ndarray) -> None:
    """Atomically write ``header`` (JSON-able dict) and ``payload`` (2-D float32/float16) to ``path``.

    ``header`` gets ``payload_dtype`` and ``payload_shape`` added.

    A new file gets 0600 less the umask, a file replaced keeps its permissions (see the module's notes).

    Raises:
        OutputPathError: the directory does not exist or cannot be written.
        OutputWriteError: the write failed (disk full, I/O error); a file written before is kept.
        ValueError: payload of another dtype/rank.
    """
    path = Path(path)
    data = np.ascontiguousarray(payload)
    if data.ndim != 2 or data.dtype.name not in _DTYPES:
        raise ValueError(f"payload must be 2-D float32/float16, got {data.dtype} {data.shape}")
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    full_header = dict(header, payload_dtype=data.dtype.name, payload_shape=list(data.shape))
    header_bytes = json.dumps(full_header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    payload_bytes = data.reshape(-1).view(np.uint8).data  # the array's own bytes: no copy of a large gallery
    digest = hashlib.sha256()
    digest.update(header_bytes)
    digest.update(payload_bytes)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(header_bytes), len(payload_bytes), digest.digest())

    atomic_write_bytes(path, prefix, header_bytes, payload_bytes, what="gallery", create_parent=False, private=True)


def _read_into_bytearray(path: Path) -> bytearray:
    """The whole file in one writable buffer, read in place (``Path.read_bytes`` then a writable copy would hold
    the gallery twice).

    Raises:
        OSError: the file cannot be read."""
    with open(path, "rb") as handle:
        blob = bytearray(os.fstat(handle.fileno()).st_size)
        view, filled = memoryview(blob), 0
        while filled < len(blob) and (count := handle.readinto(view[filled:])):
            filled += count
        del view
        if filled < len(blob):
            del blob[filled:]  # shorter than it was a moment ago: read what is there
        else:
            blob += handle.read()  # longer: the rest (the checks below say it is not what its header says)
    return blob


def read_gallery_file(path: str | os.PathLike) -> tuple[dict[str, Any], np.ndarray]:
    """Read and verify a gallery file; returns (header dict, payload (rows, D) array).

    Raises:
        DataError: missing file, a path that is not a regular file (a folder, FIFO or
            device), not a gallery file, a newer format version, truncated or corrupt
            (checksum) file, inconsistent header (JSON nested too deeply, a
            ``payload_shape`` that is not two whole numbers >= 0 matching the payload).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # reading a FIFO or a device would block or never end
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
            raise DataError(f"gallery file {path} is {kind}; give the path of an .edgereid gallery file")
        blob = _read_into_bytearray(path)
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
        shape = header["payload_shape"]
        if not (isinstance(shape, list) and len(shape) == 2 and all(is_integer(v) and v >= 0 for v in shape)):
            raise ValueError(f"payload_shape {shape!r} is not [rows, dim], two whole numbers >= 0")
        rows, dim = shape
        payload = np.frombuffer(body[header_len:], dtype=dtype)
        if payload.size != rows * dim:
            raise ValueError("payload size does not match payload_shape")
        # a view of the file's bytes where they are in this machine's order (no second copy of the gallery)
        payload = payload.reshape(rows, dim).astype(dtype.newbyteorder("="), copy=False)
    except RecursionError:  # JSON nested thousands deep: no header edge-reid writes
        raise DataError(f"gallery file {path} has an invalid header (JSON nested too deeply); restore it from a "
                        "backup or delete it to start an empty gallery") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DataError(f"gallery file {path} has an invalid header: {exc}") from exc
    if not isinstance(header, dict):
        raise DataError(f"gallery file {path} has an invalid header (not a JSON object)")
    return header, payload


@dataclass(frozen=True)
class StoredIdentity:
    """One identity as stored in a gallery file.

    Attributes:
        identity_id: the identity's id (>= 1).
        name: its name, or None.
        first_seen: seconds (Unix time by default) of creation.
        last_seen: seconds of the latest sighting.
        count: sightings and enrolled images.
        enrolled: (E, D) enrolled embeddings.
        recent: (R, D) recent embeddings, oldest first.
    """

    identity_id: int
    name: str | None
    first_seen: float
    last_seen: float
    count: int
    enrolled: np.ndarray
    recent: np.ndarray


@dataclass(frozen=True)
class StoredGallery:
    """A gallery file's settings and identities (see :func:`read_gallery`).

    Attributes:
        dim: embedding length D.
        threshold: the gallery's cosine-similarity threshold.
        history_size: recent embeddings kept per identity.
        novelty: similarity below which a sighting is stored.
        dtype: embedding dtype (float32 or float16).
        model_id: the embedding model's id, or None.
        model_name: the model's name, or None.
        next_identity_id: the next id to give (ids are never reused).
        identities: the identities in file order.
    """

    dim: int
    threshold: float
    history_size: int
    novelty: float
    dtype: np.dtype
    model_id: str | None
    model_name: str | None
    next_identity_id: int
    identities: list[StoredIdentity]


#: Largest identity id a gallery file may hold (ids are stored as 64-bit integers).
MAX_IDENTITY_ID = 2**62


def _older_version_time(path: str | os.PathLike, header: dict[str, Any], bad: list[tuple[int, str, float]]) -> float:
    """The time to load instead of identities' ``first_seen``/``last_seen`` values ``bad`` (identity id, field, value)
    that are no time in seconds since 1970 (negative, NaN/Inf, after :data:`MAX_TIMESTAMP_S`: milliseconds or
    nanoseconds), as edge-reid before 2026-11-30 stored whatever number it was given: the file's ``saved_at`` (the
    wall-clock second it was saved), with one :class:`~edge_reid.errors.EdgeReidWarning` naming the file, how many
    values and the first of them; the next save stores the new times.

    Raises:
        ValueError: the file records no ``saved_at`` in (0, :data:`MAX_TIMESTAMP_S`] either, as edge-reid wrote (the
            caller's DataError says the file is inconsistent).
    """
    import datetime
    import math
    import warnings

    from edge_reid.errors import EdgeReidWarning, caller_stacklevel
    from edge_reid.values import not_seconds_hint

    identity_id, key, value = bad[0]
    saved_at = header.get("saved_at")
    if not (is_real(saved_at) and 0.0 < saved_at <= MAX_TIMESTAMP_S):  # edge-reid wrote time.time(): never 0
        raise ValueError(f"identity {identity_id}'s {key} {value!r} is not a time in seconds since 1970")
    when = datetime.datetime.fromtimestamp(float(saved_at), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    hint = not_seconds_hint(value) if math.isfinite(value) else ""
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    warnings.warn(
        f"gallery file {path}: identity {identity_id}'s {key} {value!r}{more} are no times in seconds since 1970 "
        f"({hint or 'negative, NaN or Inf'}), as edge-reid before 2026-11-30 stored any number; loaded as the "
        f"file's save time, {when} (`--prune-after` ages count from then), stored so at the next save",
        EdgeReidWarning, stacklevel=caller_stacklevel(),
    )
    return float(saved_at)


def _control_character(text: str) -> str | None:
    """The first control character (Unicode category Cc: line breaks, tabs, terminal escapes) in ``text``, or None."""
    return next((c for c in text if unicodedata.category(c) == "Cc"), None)


def read_gallery(
    path: str | os.PathLike,
    model_id: str | None = None,
    model_name: str | None = None,
    earlier_model_ids: tuple[str, ...] = (),
) -> StoredGallery:
    """Read, verify and parse a gallery file.

    Args:
        path: the ``.edgereid`` file.
        model_id: the current model's id; a gallery saved with another model is refused (None: no check).
        model_name: the current model's name, for the error message.
        earlier_model_ids: ids older edge-reid versions gave the *same* model (e.g.
            :func:`edge_reid.spec.legacy_model_ids`); a gallery saved under one of them is accepted
            and its ``model_id`` becomes ``model_id``, so the next save records today's id.

    Raises:
        DataError: missing, corrupt, truncated or inconsistent file (a field of the wrong JSON type, e.g. a
            count that is 1.5 or "7", a model id that is not text, duplicate identity ids, a name or model name
            holding a control character: a line break or terminal escape ``gallery list`` would print), not a gallery,
            or a gallery made with another model.

    Warns:
        EdgeReidWarning: identities' times are no times in seconds since 1970 (an edge-reid before 2026-11-30
            stored any number): they are loaded as the file's save time (one warning per file).
    """
    header, payload = read_gallery_file(path)
    if header.get("kind") != GALLERY_KIND:
        raise DataError(f"{path} is an edge-reid file but not a gallery (kind {header.get('kind')!r})")
    for key in ("model_id", "model_name"):
        if header.get(key) is not None and not isinstance(header[key], str):
            raise DataError(f"gallery file {path} is inconsistent: {key} {header[key]!r} is not text")
        if header.get(key) is not None and _control_character(header[key]):
            raise DataError(f"gallery file {path} is inconsistent: {key} {header[key]!r} holds a control character")
    saved_model = header.get("model_id")
    if model_id is not None and saved_model in earlier_model_ids:
        saved_model = model_id
    if model_id is not None and saved_model is not None and saved_model != model_id:
        saved_name = header.get("model_name") or "another model"
        raise DataError(
            f"gallery {path} was made with {saved_name} (model id {saved_model[:12]}), but this run uses "
            f"{model_name or 'a different model'} (model id {model_id[:12]}); embeddings of different models "
            "are not comparable: use the gallery's model or enroll the people again into a new gallery"
        )

    def whole(value: Any, what: str) -> int:
        if not is_integer(value):  # int() would take 1.5, "7" or true: not what edge-reid writes
            raise ValueError(f"{what} {value!r} is not a whole number")
        return int(value)

    def real(value: Any, what: str) -> float:
        if not is_real(value):
            raise ValueError(f"{what} {value!r} is not a number")
        return float(value)

    try:
        dim = whole(header["dim"], "dim")
        if dim < 1 or payload.shape[1] != dim:
            raise ValueError(f"embeddings have {payload.shape[1]} values, header says {dim}")
        if whole(header["history_size"], "history_size") < 1:
            raise ValueError(f"history_size {header['history_size']} < 1")
        identities = []
        bad_times: list[tuple[int, str, float]] = []  # (identity id, field, value): times only older versions wrote
        seen: set[int] = set()
        start = 0
        for key in ("threshold", "novelty"):
            if not -1.0 <= real(header[key], key) <= 1.0:  # NaN fails too
                raise ValueError(f"{key} {header[key]!r} is not a cosine similarity in [-1, 1]")
        if not 1 <= real(header["next_identity_id"], "next_identity_id") <= MAX_IDENTITY_ID:
            raise ValueError(f"next_identity_id {header['next_identity_id']!r} outside 1..{MAX_IDENTITY_ID}")
        whole(header["next_identity_id"], "next_identity_id")
        for entry in header["identities"]:
            identity_id = whole(entry["identity_id"], "identity_id")
            enrolled, recent = whole(entry["enrolled"], "enrolled"), whole(entry["recent"], "recent")
            if identity_id in seen:
                raise ValueError(f"identity id {identity_id} appears twice")
            if not 1 <= identity_id <= MAX_IDENTITY_ID or enrolled < 0 or recent < 0:
                raise ValueError(f"bad identity entry {identity_id}")
            if entry["name"] is not None and not isinstance(entry["name"], str):
                raise ValueError(f"identity {identity_id}'s name is a {type(entry['name']).__name__}, not text")
            if entry["name"] is not None and _control_character(entry["name"]):  # no way in lets one in: crafted
                raise ValueError(f"identity {identity_id}'s name {entry['name']!r} holds a control character "
                                 f"({_control_character(entry['name'])!r}), which edge-reid has refused to store since 2026-11-30: "
                                 "crafted, or from an earlier edge-reid")
            times = {key: real(entry[key], key) for key in ("first_seen", "last_seen")}
            for key, value in times.items():
                if not 0.0 <= value <= MAX_TIMESTAMP_S:  # NaN fails too; replaced below, with a warning
                    bad_times.append((identity_id, key, value))
            if whole(entry["count"], "count") < 0:
                raise ValueError(f"identity {identity_id}'s count {entry['count']!r} is negative")
            if enrolled + recent == 0:
                raise ValueError(f"identity {identity_id} has no embeddings")
            block = payload[start : start + enrolled + recent]
            if block.shape[0] != enrolled + recent:
                raise ValueError("fewer embeddings than the identities list")
            start += enrolled + recent
            seen.add(identity_id)
            identities.append(StoredIdentity(
                identity_id, entry["name"], times["first_seen"], times["last_seen"], int(entry["count"]),
                block[:enrolled], block[enrolled:],
            ))
        if start != payload.shape[0]:
            raise ValueError("more embeddings than the identities list")
        not_unit = first_non_unit_row(payload)
        if not_unit is not None:  # galleries hold L2-normalised rows: their inner products are the cosine similarities matched on
            raise ValueError(f"stored embedding {not_unit[0]} has length {not_unit[1]:.4g}, not 1 (damaged, or written by other code)")
        if bad_times:
            saved_at = _older_version_time(path, header, bad_times)
            replaced = {(identity_id, key) for identity_id, key, _ in bad_times}
            identities = [dataclasses.replace(identity, **{
                key: saved_at for key in ("first_seen", "last_seen") if (identity.identity_id, key) in replaced
            }) for identity in identities]
        return StoredGallery(
            dim=dim, threshold=float(header["threshold"]), history_size=int(header["history_size"]),
            novelty=float(header["novelty"]), dtype=payload.dtype, model_id=saved_model or None,
            model_name=header.get("model_name"),
            next_identity_id=max([int(header["next_identity_id"]), *[i + 1 for i in seen]]),
            identities=identities,
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"gallery file {path} is inconsistent: {exc}") from exc
