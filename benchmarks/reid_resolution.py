"""How a ReID model's similarities change when people are small: labelled crops shrunk to a height.

A camera that sees a person 40 px tall gives the ReID model a crop it upsamples to its input
(256 x 128 for OSNet): the embedding has less to go on. This script measures that on labelled
crops of *another* data set (Market-1501 layout, default ``data/mot17-reid-mini`` in
``$EDGE_REID_SHARED`` or ``../shared``): every crop at least as tall as the largest height tested
is shrunk to each height (OpenCV area interpolation, as a smaller image of the same scene would
be) and embedded, and for each height it prints the same-person / different-person statistics the
tracker's appearance rules rest on:

- the lowest same-person similarity and the share of same-person pairs below the tracker's veto
  (``TrackerConfig.veto_similarity``): a veto is only safe while no same-person pair falls below it;
- the share of different-person pairs at or above the open-set re-identification threshold
  (``--reid-threshold``), calibrated at 0.01% false matches on full-size crops.

The least height at which both still hold is the smallest person whose appearance the tracker can
trust (``TrackerConfig`` has no such setting yet, and no results of this script are recorded in
the docs). Nothing here looks at a tracking video.

Example::

    python benchmarks/reid_resolution.py                     # bundled OSNet, mot17-reid-mini
    python benchmarks/reid_resolution.py --heights 160,128,96,80,64,48,40,32 --json r.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path, the shared assets
from _common import benchmark_parser, shared_dir  # noqa: E402


def shrink(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` resized to ``height`` pixels tall, aspect kept (area interpolation)."""
    import cv2

    width = max(1, int(round(image.shape[1] * height / image.shape[0])))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    from edge_reid.defaults import REID_THRESHOLD
    from edge_reid.embedder import Embedder
    from edge_reid.errors import EdgeReidError
    from edge_reid.evaluation.threshold import labelled_images, pair_similarities, threshold_at_false_match_rate
    from edge_reid.data.images import read_images
    from edge_reid.tracking import TrackerConfig

    shared = shared_dir()
    parser = benchmark_parser(__doc__, video=False, prog="reid_resolution.py")
    parser.add_argument("--data", default=str(shared / "data" / "mot17-reid-mini"),
                        help="labelled crops, Market-1501 layout (default: data/mot17-reid-mini in $EDGE_REID_SHARED or ../shared)")
    parser.add_argument("--model", help="ReID ONNX model (default: the bundled OSNet)")
    parser.add_argument("--heights", default="128,112,96,80,64,56,48,40,32", help="crop heights in pixels, comma-separated")
    parser.add_argument("--json", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    try:
        heights = sorted({int(h) for h in args.heights.split(",")}, reverse=True)
        paths, pids, cams, _ = labelled_images(Path(args.data))
        images, read, _ = read_images(paths)
        index = {p: i for i, p in enumerate(paths)}
        keep = [index[p] for p, image in zip(read, images) if image.shape[0] >= heights[0]]
        crops = [image for image in images if image.shape[0] >= heights[0]]
        pids, cams = pids[keep], cams[keep]
        embedder = Embedder(args.model)
    except (EdgeReidError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    veto = TrackerConfig().veto_similarity
    print(f"{len(crops)} crops of {len(np.unique(pids))} people at least {heights[0]} px tall ({args.data}); "
          f"veto {veto:g}, open-set threshold {REID_THRESHOLD:g}")
    print("| crop height (px) | same-person pairs | lowest same-person | same-person below veto | "
          "different-person pairs at or above open-set threshold | threshold at 0.01% false matches |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    for height in [None] + heights:
        batch = crops if height is None else [shrink(c, height) for c in crops]
        vectors = np.concatenate([embedder.embed_crops(batch[i : i + 64]).copy() for i in range(0, len(batch), 64)])
        positives, negatives = pair_similarities(vectors, pids, cams)
        row = {
            "height": height,
            "positives": int(positives.size),
            "lowest_positive": float(positives.min()),
            "positives_below_veto": float((positives < veto).mean()),
            "negatives_at_reid_threshold": float((negatives >= REID_THRESHOLD).mean()),
            "threshold_fmr_0.0001": float(threshold_at_false_match_rate(negatives, 1e-4)),
        }
        rows.append(row)
        print(f"| {'as stored' if height is None else height} | {row['positives']} | {row['lowest_positive']:.3f} | "
              f"{100 * row['positives_below_veto']:.2f}% | {100 * row['negatives_at_reid_threshold']:.3f}% | {row['threshold_fmr_0.0001']:.3f} |")
    if args.json:
        from edge_reid.atomic import write_json_atomic

        write_json_atomic(args.json, {"schema": "edge-reid-reid-resolution/1", "data": args.data, "veto": veto,
                                      "reid_threshold": REID_THRESHOLD, "rows": rows}, what="benchmark JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main())
