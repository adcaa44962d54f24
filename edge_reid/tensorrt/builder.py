"""Build a TensorRT engine from an ONNX ReID model, with its manifest, on the device it will run on.

Steps (TensorRT Python API, 8.5 to 11): ``trt.Builder`` (a failed CUDA start becomes
:class:`~edge_reid.errors.BackendUnavailableError` with TensorRT's log) -> ``create_network`` (flags
from :func:`~edge_reid.tensorrt.versions.network_flag_names`) -> ``trt.OnnxParser``
``parse_from_file`` -> builder config: workspace limit
(``set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``), precision flags
(:func:`~edge_reid.tensorrt.versions.builder_flag_names`), one optimization profile
over the batch dimension, the timing cache from ``engines/`` -> optional INT8
calibrator (TensorRT 8.x) -> ``build_serialized_network`` -> engine, manifest and
updated timing cache written atomically. Every return value that can signal failure is
checked (``set_shape`` raises ValueError, ``add_optimization_profile`` returns -1,
``set_timing_cache`` returns False, ``build_serialized_network`` returns None).

:func:`plan_build` makes every decision without TensorRT (tested on the CPU);
:func:`build_engine` only carries the plan out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from edge_reid.cuda.runtime import GpuInfo
from edge_reid.cuda.versions import DeviceCuda
from edge_reid.errors import ModelError
from edge_reid.spec import ModelSpec, embedding_output_name, file_sha256, model_sha256
from edge_reid.tensorrt.errors import EngineBuildError
from edge_reid.atomic import atomic_write_bytes
from edge_reid.tensorrt.manifest import (
    EngineManifest,
    MachineIdentity,
    engine_stem,
    timing_cache_path,
    utc_now_iso,
    write_manifest,
)
from edge_reid.tensorrt.env import machine_identity
from edge_reid.tensorrt.profile import BatchProfile
from edge_reid.onnx_graph import load_onnx
from edge_reid.output_paths import check_folder_can_be_made
from edge_reid.tensorrt.qdq_check import check_qdq_model
from edge_reid.tensorrt.startup import create_builder, make_logger
from edge_reid.tensorrt.versions import (
    PRECISIONS,
    Int8Path,
    builder_flag_names,
    choose_int8_path,
    is_strongly_typed,
    network_flag_names,
    parse_version,
    tensorrt_tag,
)

#: Default builder workspace. An 8 GB Orin shares its memory between CPU and GPU;
#: 1 GiB of tactic workspace leaves room for the OS, the model and the build itself.
DEFAULT_WORKSPACE_MB = 1024

_OOM_PATTERNS = (
    "out of memory",
    "outofmemory",
    "cudaerrormemoryallocation",
    "requested amount of gpu memory",
    "insufficient memory",
    "bad_alloc",
    "failed to allocate",
    "allocation failed",
)


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked ``edge-reid build`` for.

    Attributes:
        model_path: FP32 ONNX model (its sha256 is the engine's identity).
        precision: ``"fp16"`` or ``"int8"``.
        profile: min/opt/max batch.
        workspace_mb: builder workspace limit in MiB.
        qdq_path: Q/DQ ONNX model from ``edge-reid calibrate`` (INT8, explicit quantization).
        calibration_data: Market-1501 folder for implicit calibration (TensorRT 8.x only).
        calibration_images: crops sampled for implicit calibration.
        calibration_seed: sampling seed.
        engines_dir: where engines, manifests and the timing cache go.
        calibration_dir: where the calibration cache goes.
        rebuild: build even when a current engine exists.
    """

    model_path: Path
    precision: str = "fp16"
    profile: BatchProfile = BatchProfile()
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    qdq_path: Path | None = None
    calibration_data: Path | None = None
    calibration_images: int = 512
    calibration_seed: int = 0
    engines_dir: Path = Path("engines")
    calibration_dir: Path = Path("calibration")
    rebuild: bool = False


@dataclass(frozen=True)
class BuildPlan:
    """Every decision of a build, made before TensorRT is touched.

    Attributes:
        options: the request.
        spec: the model's spec.
        model_sha256: sha256 of ``options.model_path`` (with its weights files: :func:`~edge_reid.spec.model_sha256`).
        machine: TensorRT version and GPU the engine is built for.
        network_flags: ``NetworkDefinitionCreationFlag`` names.
        builder_flags: ``BuilderFlag`` names.
        int8_path: INT8 path, None for fp16.
        network_model_path: the ONNX file parsed (the Q/DQ model for INT8 Q/DQ).
        calibration_file: Q/DQ model or calibration cache used (None for fp16).
        calibration_batch: rows per implicit-calibration batch (the profile's opt).
        engine_path, manifest_path, timing_cache: output files.
    """

    options: BuildOptions
    spec: ModelSpec
    model_sha256: str
    machine: MachineIdentity
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    int8_path: Int8Path | None
    network_model_path: Path
    calibration_file: Path | None
    calibration_batch: int
    engine_path: Path
    manifest_path: Path
    timing_cache: Path


def onnx_summary(path: Path) -> tuple[set[str], set[int], list[str]]:
    """(op types, tensor element types, graph input names) of an ONNX model, read without external data.

    Raises:
        ModelError: not a readable ONNX model.
    """
    graph = load_onnx(path).graph
    ops = {node.op_type for node in graph.node}
    types = {init.data_type for init in graph.initializer}
    types |= {vi.type.tensor_type.elem_type for vi in list(graph.input) + list(graph.output)}
    initializers = {init.name for init in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    return ops, types, inputs


def validate_options(options: BuildOptions, spec: ModelSpec) -> None:
    """The checks that need no TensorRT: run before asking for it, so bad options fail anywhere.

    Raises:
        ModelError: the model file is missing.
        EngineBuildError: unknown precision, too small a workspace, INT8 options with
            fp16, a --qdq file that is not a Q/DQ model of this input, a missing
            --calibration-data folder, or fewer calibration images than one batch.
        OutputPathError: ``engines_dir`` (or, with --calibration-data, ``calibration_dir``)
            is a file or lies under one, or cannot be written; checked without making it.
    """
    model_path = Path(options.model_path)
    if not model_path.is_file():
        what = f"{model_path} is a folder, not a model file" if model_path.is_dir() else f"model file not found: {model_path}"
        raise ModelError(f"{what}; pass --model PATH to an .onnx file")
    if options.precision not in PRECISIONS:
        raise EngineBuildError(f"--precision must be one of {', '.join(PRECISIONS)}, got {options.precision!r}")
    if options.workspace_mb < 16:
        raise EngineBuildError(f"--workspace-mb must be at least 16, got {options.workspace_mb}")
    if options.precision == "fp16" and (options.qdq_path or options.calibration_data):
        raise EngineBuildError("--qdq and --calibration-data are for --precision int8")
    if options.qdq_path is not None:
        check_qdq_model(Path(options.qdq_path), spec)
    if options.calibration_data is not None:
        if not Path(options.calibration_data).is_dir():
            raise EngineBuildError(f"--calibration-data {options.calibration_data}: not a folder (expected a Market-1501 root)")
        if options.calibration_images < options.profile.opt:
            raise EngineBuildError(
                f"--calibration-images {options.calibration_images} is less than one calibration batch "
                f"({options.profile.opt} = --opt-batch)"
            )
    check_folder_can_be_made(options.engines_dir, "--engines-dir")
    if options.calibration_data is not None:  # the calibration cache is written only for implicit calibration
        check_folder_can_be_made(options.calibration_dir, "--calibration-dir")


def plan_build(options: BuildOptions, spec: ModelSpec, tensorrt_version: str, gpu: GpuInfo) -> BuildPlan:
    """Decide everything about a build; pure apart from reading the model files.

    Args:
        options: the request.
        spec: spec of ``options.model_path`` (``load_spec``).
        tensorrt_version: ``tensorrt.__version__`` of the builder.
        gpu: the GPU the engine is built on (and for).

    Raises:
        EngineBuildError: inconsistent options (see :func:`validate_options`), an INT8
            path this TensorRT version does not have, or (TensorRT 11) an FP16 build
            of an FP32 model.
        ModelError: the model file is missing.
    """
    validate_options(options, spec)
    model_path = Path(options.model_path)
    model_sha = model_sha256(model_path)
    version = parse_version(tensorrt_version)
    machine = machine_identity(tensorrt_version, gpu)

    int8_path: Int8Path | None = None
    network_model_path = model_path
    calibration_file: Path | None = None
    if options.precision == "fp16":
        if is_strongly_typed(version):
            _, types, _ = onnx_summary(model_path)
            if 10 not in types:  # onnx.TensorProto.FLOAT16 == 10
                raise EngineBuildError(
                    f"TensorRT {tensorrt_version} builds strongly typed networks (no FP16 builder flag): "
                    f"{model_path.name} is FP32, so pass an FP16 ONNX model (e.g. converted with onnxconverter-common)"
                )
    else:
        int8_path = choose_int8_path(version, options.qdq_path is not None, options.calibration_data is not None)
        if int8_path is Int8Path.QDQ:
            network_model_path = Path(options.qdq_path)
            calibration_file = network_model_path
        else:
            calibration_file = Path(options.calibration_dir) / (
                f"{model_path.stem}-{model_sha[:12]}-entropy2-n{options.calibration_images}-s{options.calibration_seed}"
                f"-trt{tensorrt_tag(tensorrt_version)}.cache"
            )

    stem = engine_stem(model_path.stem, model_sha, options.precision, options.profile, machine)
    engines_dir = Path(options.engines_dir)
    return BuildPlan(
        options=options,
        spec=spec,
        model_sha256=model_sha,
        machine=machine,
        network_flags=tuple(network_flag_names(version)),
        builder_flags=tuple(builder_flag_names(version, options.precision)),
        int8_path=int8_path,
        network_model_path=network_model_path,
        calibration_file=calibration_file,
        calibration_batch=options.profile.opt,
        engine_path=engines_dir / f"{stem}.engine",
        manifest_path=engines_dir / f"{stem}.json",
        timing_cache=timing_cache_path(engines_dir, machine),
    )


def up_to_date(plan: BuildPlan) -> EngineManifest | None:
    """The manifest of an existing engine that already is what ``plan`` would build, else None.

    Current means: same model, spec, TensorRT version, GPU and profile (all in the
    file name and manifest), engine file intact, and the same calibration input
    (the Q/DQ model's or the calibration cache's sha256).
    """
    from edge_reid.tensorrt.errors import EngineManifestError
    from edge_reid.tensorrt.manifest import EngineStatus, check_manifest, read_manifest

    if not plan.manifest_path.is_file():
        return None
    try:
        manifest = read_manifest(plan.manifest_path)
    except EngineManifestError:
        return None
    check = check_manifest(manifest, plan.manifest_path, plan.machine, plan.model_sha256, plan.spec.fingerprint())
    if check.status is not EngineStatus.CURRENT or manifest.profile != plan.options.profile:
        return None
    if plan.calibration_file is not None:
        current_sha = file_sha256(plan.calibration_file) if plan.calibration_file.is_file() else None
        if current_sha is None or manifest.calibration_sha256 != current_sha:
            return None
    return manifest


def explain_build_failure(messages: Iterable[str], workspace_mb: int) -> str:
    """One-line reason for a failed build, from TensorRT's error log.

    Out-of-memory failures (common on 4-8 GB Jetsons) say to lower ``--workspace-mb``.
    """
    messages = [m.strip() for m in messages if m and m.strip()]
    text = " ".join(messages).lower()
    if any(p in text for p in _OOM_PATTERNS):
        return (
            f"TensorRT ran out of memory while building (workspace limit {workspace_mb} MiB): "
            f"lower --workspace-mb (e.g. --workspace-mb {max(16, workspace_mb // 2)}), lower --max-batch, "
            "or close other programs using GPU memory"
        )
    last = messages[-1] if messages else "no error message from TensorRT"
    return f"TensorRT could not build the engine: {last}"


def _parser_error_text(error) -> str:
    """One line for a ``trt.ParserError``: its description and, where known, the failing node."""
    describe = getattr(error, "desc", None)
    text = str(describe()) if callable(describe) else str(error)
    node = getattr(error, "node", None)
    index = node() if callable(node) else -1
    return f"node {index}: {text}" if isinstance(index, int) and index >= 0 else text


def _keep_only_output(network, output_name: str) -> None:
    """Unmark every network output but ``output_name`` (a classifier's logits beside the embedding): the
    engine then has the one output the runtime binds a buffer to (with another output left marked,
    ``execute_async_v3`` fails for want of its address), and TensorRT drops the layers only it needed."""
    others = [network.get_output(i) for i in range(network.num_outputs) if network.get_output(i).name != output_name]
    for tensor in others:
        network.unmark_output(tensor)


def _check_network_io(network, spec: ModelSpec, profile: BatchProfile, source: Path) -> str:
    """Check the parsed network's input against the spec and the profile, and keep only the spec's
    output (:func:`_keep_only_output`; a network with several outputs needs ``spec.output_name``);
    returns the output name."""
    if network.num_outputs < 1:
        raise EngineBuildError(f"{source}: the network has no output")
    try:  # as the CPU backends choose it: never guessed among several
        output_name = embedding_output_name(source, spec, [network.get_output(i).name for i in range(network.num_outputs)])
    except ModelError as exc:
        raise EngineBuildError(str(exc)) from None
    _keep_only_output(network, output_name)
    if network.num_inputs != 1:
        raise EngineBuildError(f"{source}: the network has {network.num_inputs} inputs; a ReID model has one")
    tensor = network.get_input(0)
    if tensor.name != spec.input_name:
        raise EngineBuildError(f"{source}: network input is {tensor.name!r}, the spec says {spec.input_name!r}")
    shape = tuple(tensor.shape)
    if len(shape) != 4 or tuple(shape[1:]) != (3, spec.height, spec.width):
        raise EngineBuildError(f"{source}: network input shape {shape}, expected (N, 3, {spec.height}, {spec.width})")
    if shape[0] != -1 and not (profile.min == profile.opt == profile.max == shape[0]):
        raise EngineBuildError(
            f"{source}: the model's batch is fixed at {shape[0]}; export it with a dynamic batch axis, "
            f"or pass --min-batch {shape[0]} --opt-batch {shape[0]} --max-batch {shape[0]}"
        )
    return output_name


def build_engine(
    plan: BuildPlan,
    trt: ModuleType,
    calibration_batches: Callable[[], Iterable[np.ndarray]] | None = None,
    cuda: DeviceCuda = DeviceCuda(),
    echo: Callable[[str], None] | None = None,
) -> EngineManifest:
    """Carry out a :class:`BuildPlan` with TensorRT; write engine, manifest and timing cache.

    Phases: start TensorRT (:func:`~edge_reid.tensorrt.startup.create_builder`), parse the ONNX
    model, configure the build (workspace, precision flags, batch profile), attach the timing
    cache, build (calibrating first for implicit INT8), write the engine, the timing cache and
    the manifest. Every TensorRT return value that can signal failure is checked.

    Args:
        plan: from :func:`plan_build`.
        trt: the imported ``tensorrt`` module.
        calibration_batches: for implicit calibration, returns an iterator of
            preprocessed (n, 3, H, W) float32 batches (called only when there is no cache).
        cuda: the device's CUDA versions, recorded in the manifest.
        echo: where TensorRT warnings/errors and notes are printed (default: stderr).

    Returns:
        The written manifest.

    Raises:
        BackendUnavailableError: TensorRT could not start CUDA (its log and the likely causes).
        EngineBuildError: parsing, configuring or building failed (out of memory says to lower --workspace-mb);
            the model has several outputs and ``plan.spec`` names none (``output_name``).
        CudaError: a CUDA call for the calibration buffer failed.
    """
    echo = echo or (lambda line: print(line, file=sys.stderr))
    logger = make_logger(trt, echo)
    builder = create_builder(trt, logger)
    network, parser = _parse_network(plan, trt, builder, logger)
    output_name = _check_network_io(network, plan.spec, plan.options.profile, plan.network_model_path)
    config = _configure_build(plan, trt, builder)
    timing_cache = _attach_timing_cache(plan, config, echo)
    serialized = _build_serialized(plan, trt, builder, network, config, calibration_batches, logger)
    del parser, timing_cache  # the parser owns weights the network uses, the cache must outlive the build: both kept until here
    atomic_write_bytes(plan.engine_path, bytes(memoryview(serialized)))
    new_cache = config.get_timing_cache()
    if new_cache is not None:
        atomic_write_bytes(plan.timing_cache, bytes(memoryview(new_cache.serialize())))
    return _write_manifest(plan, output_name, cuda)


def _parse_network(plan: BuildPlan, trt, builder, logger):
    """Create the network (this version's flags) and parse the ONNX model into it; returns (network, parser)."""
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    if network is None:
        raise EngineBuildError(f"TensorRT could not create a network; TensorRT said: {logger.summary()}")
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.network_model_path)):
        errors = [_parser_error_text(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"{plan.network_model_path}: TensorRT's ONNX parser failed: {'; '.join(errors) or logger.summary()}")
    return network, parser


def _configure_build(plan: BuildPlan, trt, builder):
    """Builder config: workspace limit, precision flags, the batch profile.

    Raises:
        EngineBuildError: no config, or TensorRT refused the profile (``set_shape`` raised
            ValueError or ``add_optimization_profile`` returned -1).
    """
    options, spec = plan.options, plan.spec
    config = builder.create_builder_config()
    if config is None:
        raise EngineBuildError("TensorRT could not create a builder configuration")
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    profile = builder.create_optimization_profile()
    shapes = options.profile.shapes((3, spec.height, spec.width))
    try:
        profile.set_shape(spec.input_name, *shapes)
    except ValueError as exc:
        raise EngineBuildError(f"TensorRT rejected the batch profile {options.profile} for input {spec.input_name!r}: {exc}") from None
    if config.add_optimization_profile(profile) < 0:
        raise EngineBuildError(f"TensorRT rejected the batch profile {options.profile} for input {spec.input_name!r} (shapes {shapes})")
    return config


def _attach_timing_cache(plan: BuildPlan, config, echo: Callable[[str], None]):
    """Load ``engines/``'s timing cache for this TensorRT and GPU module into the config; returns the cache (keep it alive).

    ``create_timing_cache(b"")`` makes an empty cache; ``set_timing_cache(cache, ignore_mismatch=False)``
    returns False for a cache made on another device, which is then replaced by an empty one.
    """
    cache_bytes = plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b""
    try:
        cache = config.create_timing_cache(cache_bytes)
    except Exception:  # a corrupt cache file  # noqa: BLE001 - the bindings raise RuntimeError or TypeError
        cache = None
    if cache is not None and config.set_timing_cache(cache, False):
        return cache
    if cache_bytes:
        why = "unreadable" if cache is None else "made on another device or TensorRT"
        echo(f"edge-reid: ignoring the timing cache {plan.timing_cache} ({why}); starting a new one")
        cache = config.create_timing_cache(b"")
        if cache is not None and config.set_timing_cache(cache, False):
            return cache
    echo("edge-reid: TensorRT refused a timing cache; building without one (kernel timings are not kept)")
    return None


def _build_serialized(plan: BuildPlan, trt, builder, network, config, calibration_batches, logger):
    """``build_serialized_network``, calibrating first for implicit INT8; returns the serialized engine.

    Raises:
        EngineBuildError: the build failed (:func:`explain_build_failure` of TensorRT's errors).
    """
    resources: list = []
    try:
        if plan.int8_path is Int8Path.IMPLICIT_CALIBRATION:
            _attach_calibrator(plan, trt, builder, config, calibration_batches, resources)
        try:
            serialized = builder.build_serialized_network(network, config)
        except Exception as exc:  # noqa: BLE001 - the bindings raise on some internal failures instead of returning None
            logger.messages.append((int(trt.ILogger.Severity.ERROR), str(exc)))
            serialized = None
    finally:
        for resource in reversed(resources):
            resource.close()
    if serialized is None:
        raise EngineBuildError(explain_build_failure(logger.errors, plan.options.workspace_mb))
    return serialized


def _write_manifest(plan: BuildPlan, output_name: str, cuda: DeviceCuda) -> EngineManifest:
    options, spec, machine = plan.options, plan.spec, plan.machine
    calibration_sha = file_sha256(plan.calibration_file) if plan.calibration_file and plan.calibration_file.is_file() else None
    manifest = EngineManifest(
        engine_file=plan.engine_path.name,
        engine_sha256=file_sha256(plan.engine_path),
        model_file=Path(options.model_path).name,
        model_sha256=plan.model_sha256,
        spec=spec.to_dict(),
        spec_fingerprint=spec.fingerprint(),
        precision=options.precision,
        int8_path=plan.int8_path.value if plan.int8_path else None,
        calibration_file=str(plan.calibration_file) if plan.calibration_file else None,
        calibration_sha256=calibration_sha,
        **asdict(machine),  # the manifest's machine fields have MachineIdentity's names
        cuda_driver_version=cuda.driver,
        cuda_toolkit_version=cuda.toolkit,
        profile=options.profile,
        input_name=spec.input_name,
        output_name=output_name,
        input_chw=(3, spec.height, spec.width),
        embedding_dim=spec.embedding_dim,
        workspace_mb=options.workspace_mb,
        build_date=utc_now_iso(),
    )
    write_manifest(manifest, plan.manifest_path)
    return manifest


def _attach_calibrator(plan: BuildPlan, trt, builder, config, calibration_batches, resources: list) -> None:
    """TensorRT 8.x implicit INT8: entropy calibrator over a (B, 3, H, W) CUDA input buffer."""
    from edge_reid.cuda.buffers import CudaStream, HostDeviceBuffer, choose_memory_mode
    from edge_reid.cuda.runtime import query_gpu
    from edge_reid.tensorrt.calibrator import CalibrationBatchFeeder, CalibrationCache, make_entropy_calibrator

    spec, batch = plan.spec, plan.calibration_batch
    cache = CalibrationCache(plan.calibration_file)
    if cache.read() is None and calibration_batches is None:
        raise EngineBuildError("implicit INT8 calibration needs calibration images (--calibration-data)")
    mode = choose_memory_mode(query_gpu(0))
    stream = CudaStream()
    resources.append(stream)
    buffer = HostDeviceBuffer((batch, 3, spec.height, spec.width), mode)
    resources.append(buffer)

    def lazy_batches():  # images are only read if TensorRT asks (no cache)
        yield from calibration_batches()

    feeder = CalibrationBatchFeeder(lazy_batches(), buffer.array)

    def upload() -> None:
        buffer.upload(batch, stream)
        stream.synchronize()

    calibrator = make_entropy_calibrator(trt, feeder, buffer.device_ptr, upload, cache)
    resources.append(_KeepAlive(calibrator))
    config.int8_calibrator = calibrator
    # With dynamic shapes, calibration runs at the calibration profile's shape
    # (IBuilderConfig.set_calibration_profile; TensorRT 8.x developer guide, "INT8 Calibration Using Python").
    calib_profile = builder.create_optimization_profile()
    shape = (batch, 3, spec.height, spec.width)
    try:
        calib_profile.set_shape(spec.input_name, shape, shape, shape)
    except ValueError as exc:
        raise EngineBuildError(f"TensorRT rejected the calibration shape {shape}: {exc}") from None
    if not config.set_calibration_profile(calib_profile):
        raise EngineBuildError(f"TensorRT rejected the calibration profile {shape} for input {spec.input_name!r}")


class _KeepAlive:
    """Holds a Python object (the calibrator) alive until the build ends."""

    def __init__(self, obj) -> None:
        self.obj = obj

    def close(self) -> None:
        self.obj = None
