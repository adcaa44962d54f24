"""Preprocessing throughput of an older edge_reid/preprocess.py against the current one and the reference.

One process, the same real crops (cut from vtest.avi), alternating rounds, batch 32. Used for the
before/after table in docs/benchmarks.md:

    python benchmarks/preprocess_before_after.py --old-commit d265f3c --rounds 7
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, benchmark_parser, real_crops

from edge_reid.preprocess import CropPreprocessor, reference_preprocess
from edge_reid.spec import BUILTIN_SPECS


def load_old_module(commit: str, folder: Path):
    """Import edge_reid/preprocess.py as it was at ``commit`` (via ``git show``), written into ``folder``
    (where Numba also caches its kernels: keep the folder until the module is no longer used)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:edge_reid/preprocess.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    path = folder / "old_preprocess.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_preprocess", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = benchmark_parser(__doc__, crops=256)
    parser.add_argument("--old-commit", default="d265f3c")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:  # the old module and its Numba cache, removed at the end
        return measure(args, load_old_module(args.old_commit, Path(folder)))


def measure(args, old_module) -> int:
    """Time the old and the current preprocessor and the reference on the same crops; print the table."""
    spec = BUILTIN_SPECS["osnet"]
    batches = real_crops(args).batches(32)
    old = old_module.CropPreprocessor(spec, 32)
    new = CropPreprocessor(spec, 32)
    out = np.zeros((32, 3, spec.height, spec.width), np.float32)

    def reference(batch) -> None:
        for index, crop in enumerate(batch):
            out[index] = reference_preprocess(crop, spec)

    paths = {
        f"before ({args.old_commit})": lambda batch: old.write_crops(batch, out),
        "after (working tree)": lambda batch: new.write_crops(batch, out),
        "reference": reference,
    }
    for function in paths.values():
        function(batches[0])  # compile / warm up
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, function in paths.items():
            start = time.perf_counter()
            for batch in batches:
                function(batch)
            rates[name].append(32 * len(batches) / (time.perf_counter() - start))
    for name, values in rates.items():
        print(f"{name:26s} median {np.median(values):7.0f} crops/s   rounds: {' '.join(f'{v:.0f}' for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
