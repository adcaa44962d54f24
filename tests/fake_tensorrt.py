"""A recording CPU stand-in for the slice of the ``tensorrt`` Python API that edge_reid calls.

It exists to test OUR code around TensorRT on machines without it: which calls are made
with which arguments (workspace bytes, flags, profile shapes, timing cache bytes, tensor
addresses, input shapes), that engine/manifest/cache files are written, and how failures
are reported. Its "engine" is a JSON description and its "inference" computes per-channel
means of the input (the same function as tests' tiny ONNX model), reading and writing
the bound addresses. Nothing here says anything about real TensorRT behaviour or speed:
that is tests/test_tensorrt_engine.py, which runs only where TensorRT is installed.

Names and signatures follow the TensorRT 10 Python API (checked against the 10.3.0
bindings' docstrings): Builder, create_network(flags), OnnxParser.parse_from_file,
IBuilderConfig.set_memory_pool_limit / set_flag / add_optimization_profile /
create_timing_cache / set_timing_cache / get_timing_cache / int8_calibrator /
set_calibration_profile, build_serialized_network, Runtime.deserialize_cuda_engine,
ICudaEngine.num_io_tensors / get_tensor_name / get_tensor_mode / get_tensor_dtype /
get_tensor_shape / get_tensor_profile_shape / create_execution_context,
IExecutionContext.set_tensor_address / set_input_shape / execute_async_v3.
"""

from __future__ import annotations

import enum
import json
import types

import numpy as np

from edge_reid.cuda.buffers import host_array


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = _Severity

    def __init__(self) -> None:
        pass


class Logger(ILogger):
    WARNING = _Severity.WARNING

    def __init__(self, min_severity=_Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity, msg) -> None:
        pass


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 5


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    INT8 = 1


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1


class IInt8EntropyCalibrator2:
    def __init__(self) -> None:
        pass


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name = name
        self.shape = shape


class _Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs: list[_Tensor] = []
        self.outputs: list[_Tensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]

    def get_output(self, i: int) -> _Tensor:
        return self.outputs[i]


class OnnxParser:
    def __init__(self, network: _Network, logger) -> None:
        self.network = network
        self.errors: list[str] = []

    def parse_from_file(self, path: str) -> bool:
        import onnx

        try:
            graph = onnx.load(path).graph
        except Exception as exc:
            self.errors.append(f"cannot read {path}: {exc}")
            return False

        def dims(vi):
            return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)

        initializers = {i.name for i in graph.initializer}
        self.network.inputs = [_Tensor(i.name, dims(i)) for i in graph.input if i.name not in initializers]
        self.network.outputs = [_Tensor(o.name, dims(o)) for o in graph.output]
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name, min, opt, max) -> None:  # noqa: A002 - TensorRT's keyword names
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class _TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def serialize(self) -> bytes:
        return self.data


class _Config:
    def __init__(self) -> None:
        self.pool_limits: dict = {}
        self.flags: set = set()
        self.profiles: list[_Profile] = []
        self.timing_cache_in: bytes | None = None
        self.timing_cache: _TimingCache | None = None
        self.ignore_mismatch = None
        self.int8_calibrator = None
        self.calibration_profile: _Profile | None = None

    def set_memory_pool_limit(self, pool, size: int) -> None:
        self.pool_limits[pool] = size

    def set_flag(self, flag) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> _TimingCache:
        self.timing_cache_in = bytes(data)
        return _TimingCache(data)

    def set_timing_cache(self, cache: _TimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache, self.ignore_mismatch = cache, ignore_mismatch
        return True

    def get_timing_cache(self) -> _TimingCache | None:
        return self.timing_cache

    def set_calibration_profile(self, profile: _Profile) -> bool:
        self.calibration_profile = profile
        return True


class Builder:
    #: set by a test to make the next build fail with these logged errors
    fail_with: list[str] | None = None
    last: "Builder | None" = None

    def __init__(self, logger) -> None:
        self.logger = logger
        self.network: _Network | None = None
        self.config: _Config | None = None
        self.calibration_batches: list[np.ndarray] = []
        Builder.last = self

    def create_network(self, flags: int) -> _Network:
        self.network = _Network(flags)
        return self.network

    def create_builder_config(self) -> _Config:
        self.config = _Config()
        return self.config

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def _calibrate(self, config: _Config, network: _Network) -> None:
        calibrator = config.int8_calibrator
        cached = calibrator.read_calibration_cache()
        if cached:
            return
        name = network.inputs[0].name
        shape = config.calibration_profile.shapes[name][1]
        assert calibrator.get_batch_size() == shape[0]
        while True:
            pointers = calibrator.get_batch([name])
            if not pointers:
                break
            self.calibration_batches.append(host_array(pointers[0], shape).copy())
        calibrator.write_calibration_cache(f"FAKE-EntropyCalibration2 {len(self.calibration_batches)} batches\n".encode())

    def build_serialized_network(self, network: _Network, config: _Config):
        if Builder.fail_with is not None:
            for message in Builder.fail_with:
                self.logger.log(_Severity.ERROR, message)
            return None
        if BuilderFlag.INT8 in config.flags and config.int8_calibrator is not None:
            self._calibrate(config, network)
        if config.timing_cache is not None:
            config.timing_cache.data += b"+timing"
        profile = config.profiles[0]
        name = network.inputs[0].name
        description = {
            "input": name,
            "output": network.outputs[0].name,
            "input_shape": [-1, *network.inputs[0].shape[1:]],
            "output_shape": [-1, *network.outputs[0].shape[1:]],
            "profile": [list(s) for s in profile.shapes[name]],
            "flags": sorted(int(f) for f in config.flags),
        }
        return json.dumps(description).encode()


class _Context:
    def __init__(self, engine: "_Engine") -> None:
        self.engine = engine
        self.addresses: dict[str, int] = {}
        self.input_shapes: list[tuple] = []
        self.executions: list[int] = []

    def set_tensor_address(self, name: str, address: int) -> bool:
        if name not in (self.engine.d["input"], self.engine.d["output"]):
            return False
        self.addresses[name] = int(address)
        return True

    def set_input_shape(self, name: str, shape) -> bool:
        low, _, high = self.engine.d["profile"]
        if name != self.engine.d["input"] or not low[0] <= shape[0] <= high[0]:
            return False
        self.input_shapes.append(tuple(shape))
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        """Per-channel means of the bound input rows into the bound output rows."""
        self.executions.append(int(stream_handle))
        rows = self.input_shapes[-1][0]
        c, h, w = self.engine.d["input_shape"][1:]
        x = host_array(self.addresses[self.engine.d["input"]], (rows, c, h, w))
        y = host_array(self.addresses[self.engine.d["output"]], (rows, self.engine.d["output_shape"][1]))
        y[:] = x.mean(axis=(2, 3))
        return True


class _Engine:
    def __init__(self, description: dict) -> None:
        self.d = description
        self.contexts: list[_Context] = []

    @property
    def num_io_tensors(self) -> int:
        return 2

    def get_tensor_name(self, i: int) -> str:
        return (self.d["input"], self.d["output"])[i]

    def get_tensor_mode(self, name: str):
        return TensorIOMode.INPUT if name == self.d["input"] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str):
        return DataType.FLOAT

    def get_tensor_shape(self, name: str):
        return tuple(self.d["input_shape"] if name == self.d["input"] else self.d["output_shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int):
        return [tuple(s) for s in self.d["profile"]]

    def create_execution_context(self) -> _Context:
        context = _Context(self)
        self.contexts.append(context)
        return context


class Runtime:
    last_engine: _Engine | None = None

    def __init__(self, logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes):
        try:
            engine = _Engine(json.loads(bytes(data)))
        except ValueError:
            return None
        Runtime.last_engine = engine
        return engine


def make_module(version: str = "10.3.0.30") -> types.ModuleType:
    """A fresh module object standing in for ``tensorrt``."""
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    for name, value in dict(globals()).items():
        if not name.startswith("_") and name not in ("make_module", "annotations", "enum", "json", "types", "np", "host_array"):
            setattr(module, name, value)
    Builder.fail_with = None
    return module
