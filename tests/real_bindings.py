"""The REAL TensorRT and cuda-python Python modules, importable on a CPU-only machine, for conformance tests.

- TensorRT: the ``tensorrt_bindings`` wheels on PyPI are NVIDIA's real pybind11 modules without
  TensorRT's libraries. They import once ``libnvinfer.so.N`` and friends exist; this module builds
  those with the system C compiler from ``tests/tensorrt_stub.c`` (every factory returns NULL, as
  libnvinfer does when CUDA cannot start). A ``tensorrt`` package that aliases ``tensorrt_bindings``
  is written beside it, so ``import tensorrt`` finds them as on a Jetson.
- cuda-python: the real wheels; they import without a driver (calls then fail: cuda-python 12.6
  raises RuntimeError, 12.9 and 13 return ``cudaErrorInsufficientDriver``).

Each version is installed (``pip install --no-deps --target``) into its own folder under a cache
(``$EDGE_REID_BINDINGS_CACHE``, default ``~/.cache/edge-reid/real-bindings``) and used from a
subprocess, so several versions never meet in one interpreter. The first run downloads about
45 MB from the package registry (pip's own cache keeps them); without the registry, or without
``gcc``, the tests skip and say why.

Record the surfaces the stand-ins are derived from (``tests/binding_surfaces.json``) with::

    python tests/real_bindings.py --record
"""

from __future__ import annotations

import hashlib
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
PROBE = TESTS / "binding_probe.py"
STUB_SOURCE = TESTS / "tensorrt_stub.c"
SURFACES = TESTS / "binding_surfaces.json"


@dataclass(frozen=True)
class RealModule:
    """One released version of a binding package.

    Attributes:
        key: short name used in test ids and in ``binding_surfaces.json`` (``"tensorrt-10.3"``).
        kind: ``"tensorrt"`` or ``"cuda"``.
        requirements: exact pip requirements installed together (no dependencies pulled).
        tensorrt_major: major version of the TensorRT libraries the bindings link (tensorrt only).
        logs_cuda_failure: the stub logs TensorRT's CUDA-initialisation warning through the caller's
            logger before failing (only where the ILogger vtable layout is known: 8.x, 10.x).
        note: what the version is (JetPack release, ...).
    """

    key: str
    kind: str
    requirements: tuple[str, ...]
    tensorrt_major: int = 0
    logs_cuda_failure: bool = False
    note: str = ""


TENSORRT = {
    m.key: m
    for m in (
        RealModule("tensorrt-8.6", "tensorrt", ("tensorrt-bindings==8.6.1",), 8, True, "JetPack 6.0 ships 8.6.2"),
        RealModule("tensorrt-10.3", "tensorrt", ("tensorrt-cu12-bindings==10.3.0",), 10, True, "JetPack 6.1/6.2 ship 10.3.0.30"),
        RealModule("tensorrt-11-cu12", "tensorrt", ("tensorrt-cu12-bindings==11.4.0.106",), 11, False, "TensorRT 11 for CUDA 12"),
        RealModule("tensorrt-11-cu13", "tensorrt", ("tensorrt-cu13-bindings==11.4.0.106",), 11, False, "TensorRT 11 for CUDA 13"),
    )
}
# cuda-bindings' library finder (not part of the probed surface): 1.9 needs Python 3.11; 1.8.3 is the last for
# Python 3.10, JetPack 6's, where these conformance tests would otherwise skip.
PATHFINDER = "cuda-pathfinder==1.9.1" if sys.version_info >= (3, 11) else "cuda-pathfinder==1.8.3"
CUDA = {
    m.key: m
    for m in (
        RealModule("cuda-12.6", "cuda", ("cuda-python==12.6.2.post1",), note="JetPack 6.1/6.2 have CUDA 12.6"),
        RealModule("cuda-12.9", "cuda", ("cuda-python==12.9.10", "cuda-bindings==12.9.10", PATHFINDER)),
        RealModule("cuda-13", "cuda", ("cuda-python==13.4.4", "cuda-bindings==13.4.4", PATHFINDER), note="needs a CUDA 13 driver"),
    )
}
ALL = {**TENSORRT, **CUDA}


class Unavailable(Exception):
    """A real module cannot be installed here (no registry, no wheel for this Python, no C compiler)."""


def cache_root() -> Path:
    return Path(os.environ.get("EDGE_REID_BINDINGS_CACHE", Path.home() / ".cache" / "edge-reid" / "real-bindings"))


def _folder(module: RealModule) -> Path:
    digest = hashlib.sha1("\n".join(module.requirements).encode()).hexdigest()[:10]
    return cache_root() / f"{module.key}-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def _pip_install(module: RealModule, target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
        "--no-input", "--quiet", "--target", str(target), *module.requirements,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"pip install {' '.join(module.requirements)} timed out (no package registry?)") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip() and "WARNING: Location" not in line]
        raise Unavailable(f"pip cannot install {' '.join(module.requirements)}: {lines[-1] if lines else 'no output'}")


def _build_stub_libraries(module: RealModule, target: Path) -> None:
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        raise Unavailable("no C compiler (gcc) to build the stub TensorRT libraries")
    libs = target / "_stub_libs"
    libs.mkdir()
    major = module.tensorrt_major
    empty = target / "_empty.c"
    empty.write_text("/* no symbols: everything resolves in the stub libnvinfer */\n")
    defines = ["-DLOG_CUDA_INIT_FAILURE"] if module.logs_cuda_failure else []
    for name, source, flags in (
        ("nvinfer", STUB_SOURCE, defines),
        ("nvonnxparser", empty, []),
        ("nvparsers", empty, []),
        ("nvinfer_plugin", empty, []),
    ):
        soname = f"lib{name}.so.{major}"
        result = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O1", *flags, "-o", str(libs / soname), f"-Wl,-soname,{soname}", str(source)],
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise Unavailable(f"{compiler} cannot build {soname}: {result.stderr.strip()[-300:]}")
    # `import tensorrt` as on a Jetson (the tensorrt package there is these bindings under that name).
    (target / "tensorrt").mkdir()
    (target / "tensorrt" / "__init__.py").write_text(
        '"""Alias: the real tensorrt_bindings module under the name tensorrt (test harness)."""\n'
        "import sys\n\nimport tensorrt_bindings\n\nsys.modules[__name__] = tensorrt_bindings\n"
    )


def install(module: RealModule) -> Path:
    """The folder holding ``module`` ready to import (installed on first use, then cached).

    Raises:
        Unavailable: pip or the C compiler cannot provide it; the message says which.
    """
    folder = _folder(module)
    if (folder / ".complete").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _pip_install(module, staging)
        if module.kind == "tensorrt":
            _build_stub_libraries(module, staging)
        (staging / ".complete").write_text("\n".join(module.requirements) + "\n")
        try:
            staging.rename(folder)
        except OSError:  # another process finished first
            if not (folder / ".complete").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@dataclass(frozen=True)
class RealEnvironment:
    """A subprocess environment where ``import tensorrt`` and/or cuda-python are the real modules."""

    modules: tuple[RealModule, ...]
    folders: tuple[Path, ...]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*map(str, self.folders), str(REPO), str(TESTS)])
        libs = [str(f / "_stub_libs") for f in self.folders if (f / "_stub_libs").is_dir()]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        return env

    def python(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``python ARGS`` in this environment."""
        return subprocess.run([sys.executable, *args], cwd=cwd or REPO, env=self.env(), capture_output=True, text=True, timeout=timeout)

    def probe(self, kind: str, edge_reid: bool = False) -> dict:
        """Run tests/binding_probe.py for ``kind`` (``"tensorrt"``/``"cuda"``) and return its JSON.

        With ``edge_reid``, it also runs our start-up code against the real module (slower: imports edge_reid).
        """
        result = self.python(str(PROBE), kind, *(["--edge-reid"] if edge_reid else []))
        if result.returncode != 0:
            raise AssertionError(f"binding probe failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def environment(*keys: str) -> RealEnvironment:
    """Install the named modules (see :data:`ALL`) and return an environment with all of them.

    Raises:
        Unavailable: one cannot be installed here.
    """
    modules = tuple(ALL[key] for key in keys)
    return RealEnvironment(modules, tuple(install(m) for m in modules))


@functools.lru_cache(maxsize=1)
def _record() -> dict:
    return json.loads(SURFACES.read_text())


def recorded_surface(key: str) -> dict:
    """The surface of release ``key`` as tests/binding_surfaces.json records it (what the stand-ins follow)."""
    return _record()[key]["surface"]


def assert_surface_is_recorded(key: str, probed_surface: dict) -> None:
    """The probed surface of the real release equals the record; the message says how to re-record."""
    assert probed_surface == recorded_surface(key), (
        f"{key}: the real module differs from tests/binding_surfaces.json; if the change is intended, "
        "re-record with `python tests/real_bindings.py --record` and update the stand-in"
    )


def record() -> None:
    """Probe every version and write tests/binding_surfaces.json (the stand-ins' source of truth)."""
    surfaces = {}
    for key, module in ALL.items():
        data = environment(key).probe(module.kind)
        surfaces[key] = {"requirements": list(module.requirements), "surface": data["surface"]}
        print(f"{key}: recorded", file=sys.stderr)
    SURFACES.write_text(json.dumps(surfaces, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SURFACES}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        sys.exit("usage: python tests/real_bindings.py --record")
