"""A recording CPU stand-in for the slice of the ``tensorrt`` Python API that edge_reid calls.

It exists to test OUR code around TensorRT on machines without it: which calls are made with
which arguments (workspace bytes, flags, profile shapes, timing cache bytes, tensor addresses,
input shapes), that engine/manifest/cache files are written, and how failures are reported. Its
"engine" is a JSON description and its "inference" computes per-channel means of the input (the
same function as the tests' tiny ONNX model), reading and writing the bound addresses. Nothing here
says anything about real TensorRT behaviour or speed.

Its surface is derived from the real bindings of each TensorRT release (``tests/binding_surfaces.json``,
recorded by tests/real_bindings.py; tests/test_real_tensorrt_bindings.py checks the record against
the real modules and this stand-in against the record):

- per-version members: an 11.x module has no ``EXPLICIT_BATCH``, no FP16/INT8 builder flags, no
  calibrators, no ``IBuilderConfig.int8_calibrator``;
- the real enum values (``STRONGLY_TYPED`` is 1 on 10.x and 0 on 11.x);
- the real parameter names of every method;
- pybind11's rules: a Python subclass of ``ILogger`` or of a calibrator must call the base
  ``__init__`` (else ``TypeError`` at construction); ``Builder``/``Runtime`` fail with
  ``TypeError: pybind11::init(): factory function returned nullptr`` when CUDA cannot start
  (``make_module(cuda_starts=False)``), after logging TensorRT's warning through the logger;
- ``set_shape`` validates (``ValueError``), ``add_optimization_profile`` returns -1 for an empty
  profile, ``set_timing_cache`` returns False for a cache from another device, ``get_error``
  returns a ParserError-like object (``desc()``, ``code()``, ``node()``).
"""

from __future__ import annotations

import enum
import json
import types
from pathlib import Path

import numpy as np

from edge_reid.cuda.buffers import host_array

SURFACES = json.loads((Path(__file__).with_name("binding_surfaces.json")).read_text())
NULLPTR = "pybind11::init(): factory function returned nullptr"
CUDA_INIT_WARNING = (
    "CUDA initialization failure with error: 35. Please check your CUDA installation: "
    "http://docs.nvidia.com/cuda/cuda-installation-guide-linux/index.html"
)
#: Marks a timing cache as built on another device: set_timing_cache(..., ignore_mismatch=False) refuses it.
OTHER_DEVICE_CACHE = b"OTHER-DEVICE"


def record_key(version: str) -> str:
    """The recorded real release that stands for TensorRT ``version`` (8.x -> 8.6, 9/10 -> 10.3, 11 -> 11)."""
    major = int(version.split(".")[0])
    return {8: "tensorrt-8.6", 9: "tensorrt-10.3", 10: "tensorrt-10.3"}.get(major, "tensorrt-11-cu12")


def surface(version: str) -> dict:
    return SURFACES[record_key(version)]["surface"]


class _Missing:
    """A member this TensorRT version does not have: reading or setting it raises AttributeError."""

    def __set_name__(self, owner, name) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        raise AttributeError(f"'{owner.__name__}' object has no attribute '{self.name}'")

    def __set__(self, obj, value) -> None:
        raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{self.name}'")


class _NeedsBaseInit(type):
    """pybind11: constructing a Python subclass whose ``__init__`` skipped the base ``__init__`` raises TypeError."""

    def __call__(cls, *args, **kwargs):
        obj = cls.__new__(cls)
        obj._base_initialised = False
        obj.__init__(*args, **kwargs)
        if not obj._base_initialised:
            base = next(b.__name__ for b in cls.__mro__ if b.__dict__.get("_pybind_base"))
            raise TypeError(f"tensorrt.tensorrt.{base}.__init__() must be called when overriding __init__")
        return obj


def _enum(name: str, values: dict[str, int]) -> type[enum.IntEnum]:
    # Real enums may alias (two names, one value): keep the first name per value as the member.
    return enum.IntEnum(name, list(values.items()))


class ParserError:
    """What ``OnnxParser.get_error(i)`` returns (the real one is ``tensorrt.ParserError``)."""

    def __init__(self, desc: str, code: int = 8, node: int = -1) -> None:
        self._desc, self._code, self._node = desc, code, node

    def desc(self) -> str:
        return self._desc

    def code(self) -> int:
        return self._code

    def node(self) -> int:
        return self._node

    def __str__(self) -> str:
        return f"In node {self._node} with name:  and operator:  (): {self._desc}"


class _Tensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self._name, self._shape = name, shape

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape


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

    def get_input(self, index: int) -> _Tensor:
        return self.inputs[index]

    def get_output(self, index: int) -> _Tensor:
        return self.outputs[index]

    def unmark_output(self, tensor: _Tensor) -> None:
        self.outputs.remove(tensor)


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, input, min, opt, max) -> None:  # noqa: A002 - TensorRT's parameter names
        """Real check (docstring of IOptimizationProfile.set_shape): equal ranks, 0 <= min <= opt <= max."""
        dims = [tuple(int(v) for v in d) for d in (min, opt, max)]
        if len({len(d) for d in dims}) != 1 or any(not 0 <= a <= b <= c for a, b, c in zip(*dims)):
            raise ValueError(f"invalid shapes for {input!r}: min {dims[0]}, opt {dims[1]}, max {dims[2]}")
        self.shapes[input] = tuple(dims)

    def __bool__(self) -> bool:
        return bool(self.shapes)


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
        self._int8_calibrator = None
        self.calibration_profile: _Profile | None = None

    def set_memory_pool_limit(self, pool, pool_size: int) -> None:
        self.pool_limits[pool] = pool_size

    def set_flag(self, flag) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        if not profile:
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> _TimingCache:
        self.timing_cache_in = bytes(serialized_timing_cache)
        return _TimingCache(serialized_timing_cache)

    def set_timing_cache(self, cache: _TimingCache, ignore_mismatch: bool) -> bool:
        if cache.data.startswith(OTHER_DEVICE_CACHE) and not ignore_mismatch:
            return False
        self.timing_cache, self.ignore_mismatch = cache, ignore_mismatch
        return True

    def get_timing_cache(self) -> _TimingCache | None:
        return self.timing_cache

    @property
    def int8_calibrator(self):
        return self._int8_calibrator

    @int8_calibrator.setter
    def int8_calibrator(self, value) -> None:
        self._int8_calibrator = value

    def set_calibration_profile(self, profile: _Profile) -> bool:
        if not profile:
            return False
        self.calibration_profile = profile
        return True


class _Context:
    def __init__(self, engine: "_Engine") -> None:
        self.engine = engine
        self.addresses: dict[str, int] = {}
        self.input_shapes: list[tuple] = []
        self.executions: list[int] = []

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in (self.engine.d["input"], self.engine.d["output"]):
            return False
        self.addresses[name] = int(memory)
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

    def get_tensor_name(self, index: int) -> str:
        return (self.d["input"], self.d["output"])[index]

    def get_tensor_mode(self, name: str):
        modes = self._module.TensorIOMode
        return modes.INPUT if name == self.d["input"] else modes.OUTPUT

    def get_tensor_dtype(self, name: str):
        return self._module.DataType.FLOAT

    def get_tensor_shape(self, name: str):
        return tuple(self.d["input_shape"] if name == self.d["input"] else self.d["output_shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int):
        return [tuple(s) for s in self.d["profile"]]

    def create_execution_context(self) -> _Context:
        context = _Context(self)
        self.contexts.append(context)
        return context


def make_module(version: str = "10.3.0.30", cuda_starts: bool = True) -> types.ModuleType:
    """A fresh module object standing in for ``tensorrt`` ``version``.

    Args:
        version: ``tensorrt.__version__`` to report; members and enum values come from the
            recorded real release standing for it (:func:`record_key`).
        cuda_starts: False makes ``Builder(logger)`` and ``Runtime(logger)`` log TensorRT's
            CUDA-initialisation warning and raise the real ``TypeError`` (no usable GPU).
    """
    s = surface(version)
    members = s["members"]
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    module.NULLPTR = NULLPTR
    enums = {name: _enum(name.split(".")[-1], values) for name, values in s["enums"].items()}
    for name, value in enums.items():
        if "." not in name:
            setattr(module, name, value)
    severity = enums["ILogger.Severity"]

    class ILogger(metaclass=_NeedsBaseInit):
        _pybind_base = True
        Severity = severity

        def __init__(self) -> None:
            self._base_initialised = True

        def log(self, severity, msg) -> None:
            pass

    class Logger(ILogger):
        _pybind_base = True

        def __init__(self, min_severity=severity.WARNING) -> None:
            ILogger.__init__(self)
            self.min_severity = min_severity

        def log(self, severity, msg) -> None:
            pass

    for member, value in severity.__members__.items():
        setattr(Logger, member, value)

    def _start(logger) -> None:
        if not isinstance(logger, ILogger):
            raise TypeError("__init__(): incompatible constructor arguments")
        if not cuda_starts:
            logger.log(severity.WARNING, CUDA_INIT_WARNING)
            raise TypeError(NULLPTR)

    class OnnxParser:
        def __init__(self, network: _Network, logger) -> None:
            self.network = network
            self.errors: list[ParserError] = []

        def parse_from_file(self, model: str) -> bool:
            import onnx

            try:
                graph = onnx.load(model).graph
            except Exception as exc:
                self.errors.append(ParserError(f"Failed to parse ONNX model from file: {model} ({exc})", code=1))
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

        def get_error(self, index: int) -> ParserError:
            return self.errors[index]

    class Config(_Config):
        pass

    class Builder:
        #: set by a test to make the next build fail with these logged errors
        fail_with: list[str] | None = None
        last: "Builder | None" = None

        def __init__(self, logger) -> None:
            _start(logger)
            self.logger = logger
            self.network: _Network | None = None
            self.config: _Config | None = None
            self.calibration_batches: list[np.ndarray] = []
            Builder.last = self

        def create_network(self, flags: int = 0) -> _Network:
            self.network = _Network(flags)
            return self.network

        def create_builder_config(self) -> _Config:
            self.config = Config()
            return self.config

        def create_optimization_profile(self) -> _Profile:
            return _Profile()

        def _calibrate(self, config: _Config, network: _Network) -> None:
            calibrator = config.int8_calibrator
            if calibrator.read_calibration_cache():
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
                    self.logger.log(severity.ERROR, message)
                return None
            if "IInt8EntropyCalibrator2" in module.__dict__ and config.int8_calibrator is not None:
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

    class Engine(_Engine):
        _module = module

    class Runtime:
        last_engine: _Engine | None = None

        def __init__(self, logger) -> None:
            _start(logger)
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine: bytes):
            try:
                engine = Engine(json.loads(bytes(serialized_engine)))
            except ValueError:
                self.logger.log(severity.ERROR, "1: [runtime.cpp::parsePlan::314] Error Code 1: Serialization (Serialization assertion plan->header.magicTag == rt::kPLAN_MAGIC_TAG failed.)")
                return None
            Runtime.last_engine = engine
            return engine

    module.ILogger, module.Logger, module.OnnxParser, module.Builder, module.Runtime = ILogger, Logger, OnnxParser, Builder, Runtime
    module.ParserError = ParserError
    if members.get("IInt8EntropyCalibrator2"):

        class IInt8EntropyCalibrator2(metaclass=_NeedsBaseInit):
            _pybind_base = True

            def __init__(self) -> None:
                self._base_initialised = True

        module.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    for attribute in ("int8_calibrator", "set_calibration_profile"):
        if members.get(f"IBuilderConfig.{attribute}") is None:
            missing = _Missing()
            missing.__set_name__(Config, attribute)
            setattr(Config, attribute, missing)
    # Classes whose objects only TensorRT makes: named as in the real module for signature checks.
    module.INetworkDefinition, module.ITensor, module.IOptimizationProfile = _Network, _Tensor, _Profile
    module.ITimingCache, module.IBuilderConfig, module.ICudaEngine, module.IExecutionContext = _TimingCache, Config, Engine, _Context
    return module
