"""Default thresholds shared by the library and the CLI.

A light module (no heavy imports), so that the CLI can show these defaults in
``--help`` before any model or numerical library is loaded. Each value says where
it comes from; docs/tracking.md has the measurements.
"""

#: Cosine similarity at or above which a re-found person whose motion supports the match (a
#: lost track's Kalman gate) takes that identity: the bundled OSNet's similarity at a 1%
#: false-match rate on labelled crops is 0.64 (``edge-reid gallery threshold`` on
#: mot17-reid-mini); the gallery's long-standing default, 0.6, is kept.
THRESHOLD = 0.6

#: Cosine similarity at or above which a new track takes an identity *without* motion
#: support (someone who came back after a while, an enrolled person): the bundled
#: OSNet's similarity at a 0.01% false-match rate on labelled crops (0.82, ``edge-reid
#: gallery threshold --fmr 0.0001`` on mot17-reid-mini). Stricter than :data:`THRESHOLD`
#: because a new track is compared with every stored identity at once: the chance
#: of a false match grows with their number (0.01% is per pair of crops; the decision compares
#: a template with up to 8 stored views of each identity, so its false-match rate is higher:
#: docs/tracking.md, "Played backwards").
REID_THRESHOLD = 0.82

#: Cosine similarity at or above which a new track takes an *unnamed* identity (one the run made
#: itself, not enrolled or named) without motion support: above every different-person pair of
#: the labelled crops (0.9067, ``edge-reid gallery threshold --fmr 0`` on mot17-reid-mini; true-match
#: rate 67%). :data:`REID_THRESHOLD`'s 0.01% is per pair of crops; a new track's template is compared
#: with up to 8 stored views of every identity, so keeping the decision's false-match rate near
#: 0.01% with tens of identities needs a per-pair rate below 1e-6, finer than the crops can measure:
#: the strictest value they support is taken. Named identities keep :data:`REID_THRESHOLD`: they are
#: few, their views were chosen (enrolment photos), and missing one (an unrecognised visitor) is the
#: costly error there, while an unnamed identity wrongly taken merges two strangers for the rest of
#: the run (docs/tracking.md, "Played backwards").
UNNAMED_REID_THRESHOLD = 0.91

#: Identities seen within this many seconds are never pruned, and ``--prune-after`` may
#: not be shorter: a person hidden for a moment (behind someone, out of view) must keep
#: their identity.
PRUNE_MIN_AGE_S = 10.0

#: Seconds between two saves of a run's gallery (``--save-every``), on the monotonic clock; a
#: save also happens on every exit.
GALLERY_SAVE_EVERY_S = 60.0

#: Seconds between two embeddings of a person followed without doubt (the refresh of
#: the track's appearance history; DeepStream's ``reidExtractionInterval``, in seconds).
REFRESH_S = 1.0

#: The largest detector input side accepted (pixels, ``--detector-size``): about 5x YOLOX-Nano's
#: own 416 and above the largest test size published for YOLOX on MOTChallenge (1440x800 in
#: ByteTrack's MOT17 setting); larger inputs need gigabytes for the network's activations.
DETECTOR_MAX_INPUT_SIZE = 2048

#: The IoU thresholds for MOTA and IDF1 that ``evaluate_mot`` and ``edge-reid eval-mot --iou`` accept:
#: the range HOTA averages over (TrackEval's alphas 0.05..0.95); outside it a match means nothing
#: (at 0 any touching boxes match, above 1 none can).
MOT_IOU_MIN = 0.05
MOT_IOU_MAX = 0.95

#: Pixels: people shorter than this are dropped by the person detector (``PersonDetector``, ``run --min-box-height``):
#: at 32 px a person's crop is enlarged 8x to the ReID input's 256 px height, about as far as appearance carries.
MIN_BOX_HEIGHT = 32.0
