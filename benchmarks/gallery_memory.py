"""Memory and time to load and to save a large gallery file: peak memory as a multiple of the file's size.

A gallery is read whole when a run, ``gallery list`` or ``gallery enroll`` opens it, and written whole at
each save (``run --save-every``, every minute by default): its peak memory is what a device must have free
beyond the run's own. For each size, a gallery of IDENTITIES unnamed identities (each as a run leaves it: 8
stored views of D values, random unit vectors: the numbers do not matter, the sizes do) is written, then
loaded and saved again in a fresh process each, measured with :mod:`tracemalloc` (Python and NumPy
allocations) and the process's peak resident size above its size before.

Examples::

    python benchmarks/gallery_memory.py                       # 10,000 and 100,000 identities, 256-d
    python benchmarks/gallery_memory.py --identities 20000 --dim 512
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, benchmark_parser

_MEASURE = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, sys.argv[1])
from edge_reid.matching.gallery import Gallery
path, action = sys.argv[2], sys.argv[3]
gallery = Gallery.load(path) if action == "save" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
start = time.perf_counter()
if action == "load":
    gallery = Gallery.load(path)
else:
    gallery.save(path + ".copy")
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(json.dumps({"seconds": seconds, "traced_peak": peak, "rss_growth": rss}))
"""


def _write(path: Path, identities: int, dim: int) -> None:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from edge_reid.matching.gallery import Gallery

    rng = np.random.default_rng(0)
    gallery = Gallery(dim)
    for _ in range(identities):
        views = rng.normal(size=(gallery.history_size, dim)).astype(np.float32)
        gallery.add(views / np.linalg.norm(views, axis=1, keepdims=True), timestamp=0.0)
    gallery.save(path)


def _measure(path: Path, action: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(REPO), str(path), action], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> int:
    parser = benchmark_parser(__doc__, video=False)
    parser.add_argument("--identities", type=int, nargs="+", default=[10_000, 100_000], help="gallery sizes (identities)")
    parser.add_argument("--dim", type=int, default=256, help="embedding length D")
    args = parser.parse_args()
    print("| identities | file MB | load s | load peak MB (x file) | load RSS growth MB | save s | save peak MB (x file) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for identities in args.identities:
            path = Path(folder) / f"g{identities}.edgereid"
            _write(path, identities, args.dim)
            size = os.path.getsize(path)
            load, save = _measure(path, "load"), _measure(path, "save")
            mb = 1e6
            print(f"| {identities:,} | {size / mb:.0f} | {load['seconds']:.2f} | {load['traced_peak'] / mb:.0f} "
                  f"(x{load['traced_peak'] / size:.1f}) | {load['rss_growth'] / mb:.0f} | {save['seconds']:.2f} | "
                  f"{save['traced_peak'] / mb:.0f} (x{save['traced_peak'] / size:.1f}) |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
