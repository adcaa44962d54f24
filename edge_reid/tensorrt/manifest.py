"""Engine manifests: what each engine in ``engines/`` was built from and for, and whether it can run here.

A serialized TensorRT engine only runs on the TensorRT version and the GPU model it
was built with (TensorRT developer guide, "Serialized engines are not portable
across platforms or TensorRT versions"), and its kernels are timed for that exact
device. So every ``X.engine`` has an ``X.json`` manifest beside it, and an engine is
loaded only when its manifest matches this machine exactly; otherwise the user is
told why and how to rebuild.

"This machine" is the TensorRT version and the GPU module: name and compute
capability are not enough, since AGX Orin, Orin NX and Orin Nano all report
"Orin", sm 8.7. The module adds the SM count, the memory in GiB and, on a Jetson,
the board model from the device tree (``/proc/device-tree/model``).

File naming (one folder can hold engines for several devices and models)::

    {model stem}-{model sha256[:12]}-{precision}-b{min}-{opt}-{max}-trt{version}-{gpu}-sm{cc}-{sms}sm-{gib}g[-{board}].engine
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from edge_reid.spec import file_sha256
from edge_reid.tensorrt.errors import EngineManifestError, EngineNotFoundError
from edge_reid.atomic import atomic_write_bytes
from edge_reid.folders import read_regular_file
from edge_reid.tensorrt.profile import BatchProfile
from edge_reid.tensorrt.versions import PRECISIONS, tensorrt_tag

MANIFEST_SCHEMA = 2
#: Older manifests still read: schema 1 had no GPU module and recorded cuda-python's CUDA, not the device's.
READABLE_SCHEMAS = (1, 2)


@dataclass(frozen=True)
class MachineIdentity:
    """What an engine is tied to: the TensorRT version and the GPU module.

    Attributes:
        tensorrt_version: full version string, ``tensorrt.__version__`` (e.g. ``"10.3.0.30"``).
        gpu_name: CUDA device name (e.g. ``"Orin"``).
        compute_capability: ``"8.7"``.
        multiprocessors: the GPU's SM count (``cudaDeviceProp.multiProcessorCount``); 0 unknown.
        memory_gib: the GPU's total memory in whole GiB; 0 unknown.
        board: on a Jetson, the board model from ``/proc/device-tree/model``
            (``"NVIDIA Jetson AGX Orin Developer Kit"``); "" elsewhere.
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    multiprocessors: int = 0
    memory_gib: int = 0
    board: str = ""

    @property
    def module(self) -> tuple[str, str, int, int, str]:
        """Everything that identifies the GPU module (all but the TensorRT version)."""
        return (self.gpu_name, self.compute_capability, self.multiprocessors, self.memory_gib, self.board)

    def describe_module(self) -> str:
        """``"Orin (sm 8.7, 16 SMs, 61 GiB, NVIDIA Jetson AGX Orin Developer Kit)"``."""
        parts = [f"sm {self.compute_capability}", f"{self.multiprocessors} SMs", f"{self.memory_gib} GiB"]
        if self.board:
            parts.append(self.board)
        return f"{self.gpu_name} ({', '.join(parts)})"

    def describe(self) -> str:
        return f"TensorRT {self.tensorrt_version} on {self.describe_module()}"

    def tag(self) -> str:
        """The module part of file names: ``"orin-sm87-16sm-61g-agx-orin"``."""
        cc = self.compute_capability.replace(".", "")
        text = f"{slug(self.gpu_name)}-sm{cc}-{self.multiprocessors}sm-{self.memory_gib}g"
        return f"{text}-{board_tag(self.board)}" if self.board else text


def slug(text: str) -> str:
    """Lower-case file-name-safe form: ``"NVIDIA GeForce RTX 3060"`` -> ``"nvidia-geforce-rtx-3060"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def board_tag(board: str) -> str:
    """Short file-name form of a Jetson board model.

    >>> board_tag("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super")
    'orin-nano-super'
    """
    text = slug(board)
    for prefix in ("nvidia-", "jetson-"):
        text = text.removeprefix(prefix)
    for part in ("-engineering-reference", "-developer-kit"):
        text = text.replace(part, "")
    return text[:32].strip("-") or "board"


def engine_stem(model_stem: str, model_sha256: str, precision: str, profile: BatchProfile, machine: MachineIdentity) -> str:
    """Base name (no suffix) of an engine and its manifest; see the module docstring."""
    return (
        f"{slug(model_stem)}-{model_sha256[:12]}-{precision}-b{profile.min}-{profile.opt}-{profile.max}"
        f"-trt{tensorrt_tag(machine.tensorrt_version)}-{machine.tag()}"
    )


def timing_cache_path(engines_dir: str | Path, machine: MachineIdentity) -> Path:
    """The builder's timing cache for this TensorRT version and GPU module, kept in ``engines/`` and reused."""
    return Path(engines_dir) / f"timing-trt{tensorrt_tag(machine.tensorrt_version)}-{machine.tag()}.cache"


def utc_now_iso() -> str:
    """Current UTC time as ``2026-11-21T19:40:00Z``."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EngineManifest:
    """Everything an engine was built from and for (the ``X.json`` beside ``X.engine``).

    Attributes:
        engine_file: engine file name, in the manifest's folder.
        engine_sha256: sha256 of the engine file.
        model_file: the FP32 ONNX model's file name (identity is by hash, not name).
        model_sha256: sha256 of that ONNX file.
        spec: the :class:`~edge_reid.spec.ModelSpec` as a dict.
        spec_fingerprint: ``ModelSpec.fingerprint()``.
        precision: ``"fp16"`` or ``"int8"``.
        int8_path: ``"qdq"``, ``"implicit-calibration"`` or None (fp16).
        calibration_file: the Q/DQ model or calibration cache used, or None.
        calibration_sha256: its sha256, or None.
        tensorrt_version: TensorRT version that built it.
        gpu_name: GPU it was built on.
        compute_capability: that GPU's compute capability, ``"8.7"``.
        multiprocessors, memory_gib, board: that GPU's module (see :class:`MachineIdentity`);
            0/0/"" in manifests written before they were recorded (never current).
        cuda_driver_version: the device's CUDA (driver) at build time, ``"12.6"`` (informational).
        cuda_toolkit_version: the installed CUDA toolkit at build time, "" when absent (informational).
        profile: min/opt/max batch of the optimization profile.
        input_name, output_name: engine I/O tensor names.
        input_chw: (3, H, W) of one input crop.
        embedding_dim: D of the output.
        workspace_mb: builder workspace limit in MiB.
        build_date: UTC ISO time of the build.
        schema: manifest format version.
    """

    engine_file: str
    engine_sha256: str
    model_file: str
    model_sha256: str
    spec: dict[str, Any]
    spec_fingerprint: str
    precision: str
    int8_path: str | None
    calibration_file: str | None
    calibration_sha256: str | None
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    cuda_driver_version: str
    profile: BatchProfile
    input_name: str
    output_name: str
    input_chw: tuple[int, int, int]
    embedding_dim: int
    workspace_mb: int
    build_date: str
    multiprocessors: int = 0
    memory_gib: int = 0
    board: str = ""
    cuda_toolkit_version: str = ""
    schema: int = MANIFEST_SCHEMA

    def __post_init__(self) -> None:
        # Keep the spec in its JSON form (lists, not tuples) so a manifest equals its round trip.
        object.__setattr__(self, "spec", json.loads(json.dumps(self.spec)))
        object.__setattr__(self, "input_chw", tuple(int(v) for v in self.input_chw))

    @property
    def machine(self) -> MachineIdentity:
        return MachineIdentity(
            self.tensorrt_version, self.gpu_name, self.compute_capability, self.multiprocessors, self.memory_gib, self.board
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested: model, calibration, gpu, profile, io)."""
        return {
            "schema": self.schema,
            "engine_file": self.engine_file,
            "engine_sha256": self.engine_sha256,
            "model": {
                "file": self.model_file,
                "sha256": self.model_sha256,
                "spec": self.spec,
                "spec_fingerprint": self.spec_fingerprint,
            },
            "precision": self.precision,
            "int8_path": self.int8_path,
            "calibration": (
                {"file": self.calibration_file, "sha256": self.calibration_sha256} if self.calibration_sha256 else None
            ),
            "tensorrt_version": self.tensorrt_version,
            "gpu": {
                "name": self.gpu_name,
                "compute_capability": self.compute_capability,
                "multiprocessors": self.multiprocessors,
                "memory_gib": self.memory_gib,
                "board": self.board,
            },
            "cuda": {"driver": self.cuda_driver_version, "toolkit": self.cuda_toolkit_version},
            "profile": self.profile.to_dict(),
            "io": {
                "input": self.input_name,
                "output": self.output_name,
                "input_chw": list(self.input_chw),
                "embedding_dim": self.embedding_dim,
            },
            "workspace_mb": self.workspace_mb,
            "build_date": self.build_date,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> "EngineManifest":
        """Inverse of :meth:`to_dict`.

        Raises:
            EngineManifestError: a field is missing or of the wrong type, or ``engine_file`` is not a plain file
                name (the engine lies beside its manifest); the message names ``source``.
        """
        try:
            if data.get("schema") not in READABLE_SCHEMAS:
                raise EngineManifestError(f"{source}: manifest schema {data.get('schema')!r}, expected {MANIFEST_SCHEMA}")
            if not isinstance(data["engine_file"], str) or Path(data["engine_file"]).name != data["engine_file"]:
                # check_manifest hashes and run loads the file named: only one beside the manifest
                raise EngineManifestError(f"{source}: engine_file {data['engine_file']!r} is not a file name beside the manifest")
            model, gpu, io = data["model"], data["gpu"], data["io"]
            calibration = data.get("calibration") or {}
            precision = data["precision"]
            if precision not in PRECISIONS:
                raise EngineManifestError(f"{source}: unknown precision {precision!r}")
            return cls(
                engine_file=str(data["engine_file"]),
                engine_sha256=str(data["engine_sha256"]),
                model_file=str(model["file"]),
                model_sha256=str(model["sha256"]),
                spec=dict(model["spec"]),
                spec_fingerprint=str(model["spec_fingerprint"]),
                precision=precision,
                int8_path=data.get("int8_path"),
                calibration_file=calibration.get("file"),
                calibration_sha256=calibration.get("sha256"),
                tensorrt_version=str(data["tensorrt_version"]),
                gpu_name=str(gpu["name"]),
                compute_capability=str(gpu["compute_capability"]),
                multiprocessors=int(gpu.get("multiprocessors", 0)),
                memory_gib=int(gpu.get("memory_gib", 0)),
                board=str(gpu.get("board", "")),
                cuda_driver_version=str((data.get("cuda") or {}).get("driver", "")),
                cuda_toolkit_version=str((data.get("cuda") or {}).get("toolkit", "")),
                profile=BatchProfile.from_dict(data["profile"]),
                input_name=str(io["input"]),
                output_name=str(io["output"]),
                input_chw=tuple(int(v) for v in io["input_chw"]),
                embedding_dim=int(io["embedding_dim"]),
                workspace_mb=int(data.get("workspace_mb", 0)),
                build_date=str(data.get("build_date", "")),
                schema=int(data["schema"]),
            )
        except EngineManifestError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EngineManifestError(f"{source}: incomplete engine manifest ({type(exc).__name__}: {exc}); rebuild with --rebuild") from None
        except Exception as exc:  # e.g. EngineBuildError from an invalid profile
            raise EngineManifestError(f"{source}: invalid engine manifest: {exc}") from None


def write_manifest(manifest: EngineManifest, path: str | Path) -> Path:
    """Write ``manifest`` as indented JSON to ``path`` atomically."""
    return atomic_write_bytes(path, (json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n").encode())


#: Largest manifest file read: edge-reid writes about 2 KB; a larger ``*.json`` in an engines folder is no manifest.
MAX_MANIFEST_BYTES = 1 << 20


def read_manifest(path: str | Path) -> EngineManifest:
    """Read a manifest JSON.

    Raises:
        EngineManifestError: unreadable, not a regular file (a pipe or device, which would block or never
            end), over :data:`MAX_MANIFEST_BYTES`, not JSON (or nested too deeply), or incomplete (message
            names the file).
    """
    path = Path(path)
    try:
        raw = read_regular_file(path, MAX_MANIFEST_BYTES + 1)
        if raw is None:
            raise EngineManifestError(f"{path}: not a regular file (a device, pipe or socket), so no engine manifest")
        if len(raw) > MAX_MANIFEST_BYTES:
            raise EngineManifestError(f"{path}: over {MAX_MANIFEST_BYTES} bytes, so no engine manifest (edge-reid's are about 2 KB)")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, or a number of over 4300 digits
        raise EngineManifestError(f"{path}: cannot read engine manifest ({exc})") from None
    except RecursionError:
        raise EngineManifestError(f"{path}: cannot read engine manifest (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise EngineManifestError(f"{path}: engine manifest is not a JSON object")
    return EngineManifest.from_dict(data, source=str(path))


class EngineStatus(str, Enum):
    """Whether an engine can be loaded on this machine for this model."""

    CURRENT = "current"  # matches model, TensorRT version and GPU; file intact
    STALE = "stale"  # built for another TensorRT version or GPU module: never loaded, rebuild
    BROKEN = "broken"  # manifest unreadable, engine file missing or changed
    OTHER_MODEL = "other-model"  # built from another model or spec
    UNKNOWN = "unknown"  # TensorRT or the GPU cannot be queried here


@dataclass(frozen=True)
class EngineCheck:
    """Verdict on one manifest.

    Attributes:
        manifest_path: the ``X.json`` file.
        manifest: parsed manifest, None when unreadable.
        status: :class:`EngineStatus`.
        reasons: why it is not current (empty when current).
    """

    manifest_path: Path
    manifest: EngineManifest | None
    status: EngineStatus
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def engine_path(self) -> Path | None:
        return self.manifest_path.parent / self.manifest.engine_file if self.manifest else None

    def describe(self) -> str:
        """One line: file, status, reasons."""
        name = self.engine_path.name if self.engine_path else self.manifest_path.name
        text = f"{name}: {self.status.value}"
        return f"{text} ({'; '.join(self.reasons)})" if self.reasons else text


def check_manifest(
    manifest: EngineManifest,
    manifest_path: str | Path,
    machine: MachineIdentity | None,
    model_sha256: str | None = None,
    spec_fingerprint: str | None = None,
    verify_engine_hash: bool = True,
) -> EngineCheck:
    """Decide whether an engine can run here.

    Args:
        manifest: the parsed manifest.
        manifest_path: where it was read from (the engine is beside it).
        machine: this machine's TensorRT version and GPU; None when unknown
            (no TensorRT or no GPU): status UNKNOWN unless the engine is broken.
        model_sha256, spec_fingerprint: the model being run; None skips the model check.
        verify_engine_hash: re-hash the engine file (cheap: engines are a few MB).

    Returns:
        An :class:`EngineCheck`. Order of verdicts: OTHER_MODEL, BROKEN, STALE/UNKNOWN, CURRENT.
    """
    manifest_path = Path(manifest_path)
    if model_sha256 is not None and manifest.model_sha256 != model_sha256:
        return EngineCheck(manifest_path, manifest, EngineStatus.OTHER_MODEL, ("built from another model file",))
    if spec_fingerprint is not None and manifest.spec_fingerprint != spec_fingerprint:
        return EngineCheck(manifest_path, manifest, EngineStatus.OTHER_MODEL, ("built with another model spec",))
    engine_path = manifest_path.parent / manifest.engine_file
    if not engine_path.is_file():
        return EngineCheck(manifest_path, manifest, EngineStatus.BROKEN, (f"engine file {engine_path.name} is missing",))
    if verify_engine_hash and file_sha256(engine_path) != manifest.engine_sha256:
        return EngineCheck(manifest_path, manifest, EngineStatus.BROKEN, (f"{engine_path.name} differs from the one the manifest describes",))
    if machine is None:
        return EngineCheck(manifest_path, manifest, EngineStatus.UNKNOWN, ("TensorRT or the GPU cannot be queried here",))
    reasons = []
    if manifest.tensorrt_version != machine.tensorrt_version:
        reasons.append(f"built with TensorRT {manifest.tensorrt_version}, this machine has {machine.tensorrt_version}")
    if (manifest.gpu_name, manifest.compute_capability) != (machine.gpu_name, machine.compute_capability):
        reasons.append(
            f"built for {manifest.gpu_name} (sm {manifest.compute_capability}), "
            f"this GPU is {machine.gpu_name} (sm {machine.compute_capability})"
        )
    elif not manifest.multiprocessors:
        reasons.append("its manifest does not record the GPU module (SMs, memory, board), so it may be another module's; rebuild it")
    elif manifest.machine.module != machine.module:
        reasons.append(f"built for {manifest.machine.describe_module()}, this GPU is {machine.describe_module()}")
    if reasons:
        return EngineCheck(manifest_path, manifest, EngineStatus.STALE, tuple(reasons))
    return EngineCheck(manifest_path, manifest, EngineStatus.CURRENT)


def scan_engines(
    engines_dir: str | Path,
    machine: MachineIdentity | None,
    model_sha256: str | None = None,
    spec_fingerprint: str | None = None,
) -> list[EngineCheck]:
    """Check every manifest (``*.json``) in ``engines_dir``; unreadable ones come back BROKEN.

    Returns an empty list when the folder does not exist.
    """
    folder = Path(engines_dir)
    if not os.path.isdir(folder):  # a name too long for the file system is no folder, not an OSError
        return []
    checks = []
    for path in sorted(folder.glob("*.json")):
        try:
            manifest = read_manifest(path)
        except EngineManifestError as exc:
            checks.append(EngineCheck(path, None, EngineStatus.BROKEN, (str(exc),)))
            continue
        checks.append(check_manifest(manifest, path, machine, model_sha256, spec_fingerprint))
    return checks


def rebuild_command(
    model_path: str | Path, manifest: EngineManifest | None, precision: str | None = None, engines_dir: str | Path = "engines"
) -> str:
    """The ``edge-reid build`` command line that rebuilds an engine (or builds a first one).

    Paths are quoted for a POSIX shell (:func:`shlex.quote`); ``--engines-dir`` is added when
    ``engines_dir`` is not the default ``engines``, so the engine goes where ``run`` looks.
    """
    precision = precision or (manifest.precision if manifest else "fp16")
    parts = ["edge-reid build", f"--model {shlex.quote(str(model_path))}", f"--precision {precision}"]
    if manifest is not None:
        if precision == "int8" and manifest.int8_path == "qdq" and manifest.calibration_file:
            parts.append(f"--qdq {shlex.quote(manifest.calibration_file)}")
        elif precision == "int8" and manifest.int8_path == "implicit-calibration":
            parts.append("--calibration-data MARKET1501_DIR")
        p = manifest.profile
        parts += [f"--min-batch {p.min}", f"--opt-batch {p.opt}", f"--max-batch {p.max}"]
    elif precision == "int8":
        parts.append("--qdq calibration/MODEL-int8-qdq.onnx")
    parts.append(engines_dir_option(engines_dir))
    parts.append("--rebuild")
    return " ".join(part for part in parts if part)


def engines_dir_option(engines_dir: str | Path) -> str:
    """``"--engines-dir DIR"`` (quoted for a POSIX shell) for a command line, or "" for the default ``engines``."""
    return "" if Path(engines_dir) == Path("engines") else f"--engines-dir {shlex.quote(str(engines_dir))}"


def select_engine(
    engines_dir: str | Path,
    model_path: str | Path,
    model_sha256: str,
    spec_fingerprint: str,
    machine: MachineIdentity,
    precision: str | None = None,
) -> EngineCheck:
    """The engine to load for a model on this machine.

    Among CURRENT engines of the model (and of ``precision`` when given), the
    newest build wins.

    Raises:
        EngineNotFoundError: none is current. The message lists the stale or broken
            ones with their reasons, says they are never loaded, and gives the
            ``edge-reid build ... --rebuild`` command (``run --rebuild`` does it too);
            without any, it names the engines built from another version of the same
            model file, or from the same file with another spec (or by an edge-reid before 2026-11-30,
            whose spec fingerprint differs), and gives the ``edge-reid build`` command.
    """
    scanned = scan_engines(engines_dir, machine, model_sha256, spec_fingerprint)
    checks = [c for c in scanned if c.status is not EngineStatus.OTHER_MODEL]
    if precision is not None:
        checks = [c for c in checks if c.manifest is None or c.manifest.precision == precision]
    current = [c for c in checks if c.status is EngineStatus.CURRENT]
    if current:
        return max(current, key=lambda c: (c.manifest.build_date, c.manifest_path.name))
    wanted = f"a {precision} engine" if precision else "an engine"
    unusable = [c for c in checks if c.status in (EngineStatus.STALE, EngineStatus.BROKEN) and c.manifest is not None]
    if unusable:
        listed = "; ".join(c.describe() for c in unusable)
        command = rebuild_command(model_path, unusable[0].manifest, precision, engines_dir)
        raise EngineNotFoundError(
            f"no current TensorRT engine for {Path(model_path).name} in {engines_dir} for {machine.describe()}: "
            f"{listed}. Such engines are never loaded. Rebuild with `{command}` (or add --rebuild to run)"
        )
    command = rebuild_command(model_path, None, precision, engines_dir).removesuffix(" --rebuild")
    name = Path(model_path).name
    earlier = [c.manifest.engine_file for c in scanned if c.status is EngineStatus.OTHER_MODEL and c.manifest.model_file == name
               and c.manifest.model_sha256 != model_sha256 and (precision is None or c.manifest.precision == precision)]
    found = (f"engines built from another version of {name}: {', '.join(earlier)} (never loaded for this one, "
             f"whose sha256 differs); " if earlier else "")
    other_spec = [c.manifest.engine_file for c in scanned if c.status is EngineStatus.OTHER_MODEL
                  and c.manifest.model_sha256 == model_sha256 and (precision is None or c.manifest.precision == precision)]
    if other_spec:  # e.g. built by edge-reid before 2026-11-30, whose spec fingerprint also hashed the spec's name
        found += (f"engines built from this model file with another model spec or by an older edge-reid: "
                  f"{', '.join(other_spec)} (never loaded: their preprocessing may differ); ")
    raise EngineNotFoundError(
        f"no TensorRT engine for {name} in {engines_dir}: {found}build {wanted} on this device with "
        f"`{command}` (or add --rebuild to run)"
    )
