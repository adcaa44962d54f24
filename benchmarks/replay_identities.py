"""Why a video played in a loop keeps creating identities: each new identity of each pass, and its cause.

Plays the video ``--passes`` times through one :class:`~edge_reid.pipeline.Pipeline` (the tracker,
the identities and an in-memory gallery carry over from pass to pass, as in
``edge-reid run --repeat 0 --gallery G``). Every track that asks for an identity is compared
with the gallery as :class:`~edge_reid.identities.TrackIdentities` compares it (its template
against every identity's stored views), and each identity created is put in one of these classes:

- ``empty gallery``: nothing to match yet;
- ``below the strict threshold``: no identity reaches its threshold on appearance alone
  (``--unnamed-reid-threshold``, 0.91 by default, for the unnamed identities a run makes);
- ``ambiguous``: two or more identities reach the lower of the two thresholds and the best does not
  stand out (Lowe's ratio test), so the ambiguity rule refuses to choose;
- ``one passes, refused``: the best reaches its threshold and is not contested, but it is held by a
  track in view, looks no more alike than someone in view, or belongs to a lost track elsewhere.

Prints, per pass, identities created by class and tracks that took an existing identity; then,
for passes after the first, each creation with its frame, top-3 similarities and their identities.
Once the video repeats, every person has been seen: ideally nothing is created.

    python benchmarks/replay_identities.py --passes 3
    python benchmarks/replay_identities.py --passes 3 --unnamed-reid-threshold 0.82   # as before the two thresholds
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_parser, video_path  # noqa: E402

from edge_reid import identities as identities_module  # noqa: E402
from edge_reid.defaults import UNNAMED_REID_THRESHOLD  # noqa: E402
from edge_reid.pipeline import Pipeline  # noqa: E402
from edge_reid.sources import open_source  # noqa: E402
from edge_reid.thresholds import at_least  # noqa: E402


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--passes", type=int, default=3, help="passes over the video (default: %(default)s)")
    parser.add_argument("--details", type=int, default=40, help="creations listed after the first pass (default: %(default)s)")
    parser.add_argument("--unnamed-reid-threshold", type=float, default=UNNAMED_REID_THRESHOLD,
                        help="as edge-reid run's (default: %(default)s)")
    args = parser.parse_args()
    video = video_path(args)

    pipeline = Pipeline(unnamed_reid_threshold=args.unnamed_reid_threshold)
    probe = open_source(str(video))
    frames_per_pass = probe.stats.declared_frames or 0
    probe.close()
    causes: collections.Counter = collections.Counter()
    created_after_first: list[tuple] = []
    current = {"frame": 0}
    identify = identities_module.TrackIdentities._identify

    def observed(self, tracker, pending, live, now_s):
        ready = [(t, v) for t in pending if (v := identities_module.template(t)) is not None]
        before = {}
        if len(self.gallery) and ready:
            scores, found = self.gallery.search(np.stack([v for _, v in ready]), 3)
            before = {t.track_id: (s, f) for (t, _), s, f in zip(ready, scores, found)}
        created = identify(self, tracker, pending, live, now_s)
        for track, _ in ready:
            if track.track_id not in created:
                causes["took an existing identity"] += 1
                continue
            if track.track_id not in before:
                cause = "empty gallery"
            else:
                scores, found = before[track.track_id]
                passing = [s for s in scores.tolist() if bool(at_least(s, self.contest_threshold))]
                if len(passing) >= 2 and not identities_module.stands_out(passing[0], passing[1]):
                    cause = "ambiguous"
                elif bool(at_least(scores[0], self.reid_threshold_of(int(found[0])))):
                    cause = "one passes, refused"
                else:
                    cause = "below the strict threshold"
                if current["frame"] >= frames_per_pass:
                    created_after_first.append((current["frame"], cause, scores.round(3).tolist(), found.tolist()))
            causes[cause] += 1
        return created

    identities_module.TrackIdentities._identify = observed
    print(f"{video}: {frames_per_pass} frames per pass, {args.passes} passes, unnamed identities' threshold {args.unnamed_reid_threshold}")
    count_before = 0
    for result in pipeline.run(open_source(str(video), repeat=args.passes)):
        current["frame"] = result.frame_index
        if frames_per_pass and result.frame_index % frames_per_pass == frames_per_pass - 1:
            made = len(pipeline.gallery) - count_before
            count_before = len(pipeline.gallery)
            listed = ", ".join(f"{cause} {n}" for cause, n in sorted(causes.items()))
            print(f"pass {result.frame_index // frames_per_pass + 1}: {made} identities created ({listed}); "
                  f"{len(pipeline.gallery)} in the gallery", flush=True)
            causes.clear()
    print(f"\nidentities created after the first pass (frame, cause, top-3 similarities, their identities), first {args.details}:")
    for frame, cause, scores, found in created_after_first[: args.details]:
        print(f"  {frame:>5}  {cause:<27} {scores}  {found}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
