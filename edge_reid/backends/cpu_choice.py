"""``--backend auto`` between the two CPU backends, OpenVINO and ONNX Runtime, chosen by measurement
once per model, machine and versions.

Which one is faster depends on the CPU, and its flags do not tell: on an Intel Xeon (AVX-512, AMX)
OpenVINO ran the bundled OSNet several times faster than ONNX Runtime, and still faster when held to
AVX2 kernels, while on an AVX2-only AMD EPYC ONNX Runtime ran both models faster (docs/benchmarks.md,
"An AVX2-only CPU"). So, like ONNX Runtime's graph level
(:mod:`edge_reid.backends.onnxruntime_tuning`) and TensorRT's timing cache, the first time ``auto``
meets a (model file, kind, options, CPU, OpenVINO and ONNX Runtime versions), both backends are opened
as the run opens them and timed side by side on the model itself (random input, a warm-up call each,
alternating rounds, medians). OpenVINO, first in the registry, stays first unless ONNX Runtime is
faster by more than :data:`KEEP_ORDER_WITHIN`, so noise does not flip the choice.

What is timed: for a model that runs beside another (``side_by_side``, as in ``edge-reid run`` and
``Pipeline``, where the detector and the ReID model share the cores), the process's CPU time per call,
because the cores are the limit there and OpenVINO's every-core pool would look faster alone than it
is beside the other model (its wall time per call is about half its CPU time on two cores, ONNX
Runtime's on its half of the cores about equal); for a model alone, wall time per call.

Cache: ``$EDGE_REID_CACHE_DIR/cpu-backend-choice.json`` (see :func:`edge_reid.cache_folder.cache_dir`),
written atomically; delete it to measure again. A cache that cannot be read is ignored, one that
cannot be written is skipped (the choice is then measured per process, said once:
:func:`~edge_reid.cache_folder.warn_uncached`; docs/caches.md).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_reid.cache_folder import cache_file, read_cache_entries, timings_in_ms, write_cache_entry

#: The pair ordered by measurement, in the registry's order.
CPU_BACKENDS = ("openvino", "onnxruntime")
#: ONNX Runtime must beat OpenVINO by more than this share of OpenVINO's time to go first.
KEEP_ORDER_WITHIN = 0.05
ROUNDS = 3
CALLS_PER_ROUND = 2
CACHE_FILE = "cpu-backend-choice.json"
#: /2: the options in the key are plain text (/1 held reprs, ``engines_dir=PosixPath('engines')``, spelt two ways
#: for the same settings); a /1 file is ignored, measured once and replaced.
SCHEMA = "edge-reid-cpu-backend-choice/2"
TITLES = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}


def choice_key(kind: str, model_path: str | Path, options: str) -> str:
    """What the choice depends on: the model's bytes and kind (``"embedding"`` or ``"detector"``), the
    options it is opened with (threads, batch, precision, input size: plain text, the same in every process),
    the CPU's model (:func:`edge_reid.cpu.cpu_model`: on Arm the board and its cores, so Jetsons differ), instruction
    sets and usable cores (:func:`edge_reid.cpu.usable_cpu_count`: the affinity, lowered by a container's CPU quota,
    so a ``docker --cpus=1`` run measures its own choice), and both runtimes' versions."""
    from importlib import metadata

    from edge_reid.cpu import cpu_isa_flags, cpu_model, usable_cpu_count
    from edge_reid.spec import model_sha256

    versions = []
    for package in ("openvino", "onnxruntime"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} missing")
    return "|".join((kind, model_sha256(model_path), options, cpu_model(), ",".join(cpu_isa_flags()), f"{usable_cpu_count()} cores", *versions))


def pick_first(ms: dict[str, float]) -> str:
    """``"onnxruntime"`` when its median ms per call beats OpenVINO's by more than :data:`KEEP_ORDER_WITHIN`, else ``"openvino"``.

    >>> pick_first({"openvino": 10.0, "onnxruntime": 9.6}), pick_first({"openvino": 10.0, "onnxruntime": 8.0})
    ('openvino', 'onnxruntime')
    """
    return "onnxruntime" if ms["onnxruntime"] < ms["openvino"] * (1.0 - KEEP_ORDER_WITHIN) else "openvino"


def time_calls(calls: dict[str, Callable[[], Any]], clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median ms per call of each callable on ``clock`` (wall time, or ``time.process_time`` for the CPU
    time of every thread of the process): one warm-up call each, then :data:`ROUNDS` alternating rounds."""
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            start = clock()
            for _ in range(CALLS_PER_ROUND):
                call()
            samples[name].append(1000.0 * (clock() - start) / CALLS_PER_ROUND)
    return {name: statistics.median(values) for name, values in samples.items()}


def order_by_speed(
    tried: list,
    kind: str,
    model_path: str | Path,
    options: str,
    open_backend: Callable[[str], Any],
    make_call: Callable[[Any], Callable[[], Any]],
    cpu_time: bool = False,
) -> list:
    """``tried`` (the :class:`~edge_reid.backends.BackendChoice` list of ``auto``) with OpenVINO and ONNX
    Runtime in the order measured on this machine, each reason saying so; unchanged when the list does not
    start with both, or when either cannot be opened here (``auto`` then passes over it as usual).

    Args:
        tried: the candidates, best first.
        kind: ``"embedding"`` or ``"detector"`` (part of the cache key).
        model_path: the model file (its bytes are part of the key).
        options: how the backends are opened, as text (part of the key).
        open_backend: backend name -> an opened backend, as the caller opens it.
        make_call: opened backend -> a callable that runs the model once on prepared input.
        cpu_time: time the process's CPU time per call (a model beside another), not wall time.
    """
    names = [choice.name for choice in tried]
    if sorted(names[:2]) != sorted(CPU_BACKENDS):
        return tried
    path = cache_file(CACHE_FILE)
    try:
        key = choice_key(kind, model_path, f"{options}, {'cpu' if cpu_time else 'wall'} time")
    except OSError:  # a missing or unreadable model: opening it says so, in the backend's words
        return tried
    cached = read_cache_entries(path, SCHEMA).get(key)
    if isinstance(cached, dict) and cached.get("first") in CPU_BACKENDS and timings_in_ms(cached.get("ms"), CPU_BACKENDS):
        first, ms, how = cached["first"], cached["ms"], "measured earlier"
    else:
        opened = {}
        try:
            for name in CPU_BACKENDS:
                opened[name] = open_backend(name)
            calls = {name: make_call(backend) for name, backend in opened.items()}
            ms = {name: round(value, 3) for name, value in time_calls(calls, time.process_time if cpu_time else time.perf_counter).items()}
        except Exception:  # noqa: BLE001 - one cannot open or run here: auto tries them in order and says why
            return tried
        finally:
            for backend in opened.values():
                backend.close()
        first, how = pick_first(ms), "measured now"
        write_cache_entry(path, SCHEMA, key, {"first": first, "ms": ms}, "CPU backend choice cache")
    second = next(name for name in CPU_BACKENDS if name != first)
    unit = "ms of CPU" if cpu_time else "ms"
    note = (f"{TITLES[first]} {float(ms.get(first, 0)):.1f} {unit} against {TITLES[second]} "
            f"{float(ms.get(second, 0)):.1f} {unit} a call on this CPU ({how})")
    by_name = {choice.name: choice for choice in tried[:2]}
    ordered = [by_name[first], by_name[second]]
    return [type(choice)(choice.name, f"{choice.reason}; {note}") for choice in ordered] + list(tried[2:])
