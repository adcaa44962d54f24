"""``edge-reid gallery ...``: enroll people, list, remove, export, and choose a match threshold."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge_reid.cli import terminal
from edge_reid.cli.app import HELP_MARKUP_MODE, app, output_file
from edge_reid.errors import DataError, OutputPathError

if TYPE_CHECKING:
    import numpy as np

    from edge_reid.matching.gallery import Gallery

console = terminal.console()
gallery_app = typer.Typer(
    name="gallery",
    help="Manage a persistent gallery (.edgereid): enroll people by photo, list, remove, export; pick a threshold.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP_MODE,
)
app.add_typer(gallery_app, name="gallery")

#: Images at most this tall and at least CROP_ASPECT times taller than wide count as person crops in --mode auto.
CROP_MAX_HEIGHT = 512
CROP_ASPECT = 1.5
#: A crop (given, or cut to a detected person) is enlarged at most this many times along either side to the ReID
#: model's input (256x128 for the bundled OSNet: at least 32x16 px; 32 px is also `run`'s --min-box-height
#: default, the shortest person a run embeds). A smaller crop holds too little of the person: a 2x76 px sliver
#: of one person is as alike to slivers of others (cosine similarity about 0.7 on average, up to 0.89, on
#: mot17-reid-mini) as the named-person threshold (0.82) asks, so enrolled under a name it would be matched to strangers.
CROP_MAX_ENLARGEMENT = 8

GALLERY_OPTION = typer.Option(..., "--gallery", "-g", parser=output_file, metavar="<path>", help="Gallery file (.edgereid).")


def _load(path: Path) -> "Gallery":
    from edge_reid.matching.gallery import Gallery

    return Gallery.load(path)


def _refuse_a_missing_gallery(path: Path) -> None:
    """The error loading ``path`` gives (it does not exist, it is a folder), before a lock file is made beside it."""
    if not path.is_file():
        _load(path)


def _check_name_option(name: str) -> None:
    """--name as a usage error when it holds control characters (:func:`~edge_reid.matching.gallery.check_name`)."""
    from edge_reid.matching.gallery import check_name

    try:
        check_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None


def _expand_images(inputs: list[Path]) -> list[Path]:
    """Files as given; folders replaced by their image files and HEIC/HEIF photos (sorted by name: a phone's
    photos, which OpenCV cannot read, are then skipped by name with what to do, not left out unsaid)."""
    from edge_reid.data.images import HEIF_SUFFIXES, list_images
    from edge_reid.folders import folder_entries

    paths: list[Path] = []
    for item in inputs:
        if item.is_dir():
            heif = [path for path in folder_entries(item) if path.suffix.lower() in HEIF_SUFFIXES and path.is_file()]
            paths.extend(sorted(list_images(item) + heif))
        else:
            paths.append(item)
    return paths


def person_crop(image: "np.ndarray", detector, mode: str) -> tuple["np.ndarray | None", str | None]:
    """The person crop to enroll from one BGR image, or (None, reason it was skipped).

    Modes: ``crops`` (the image is a person crop), ``detect`` (the detector must
    find exactly one person; the crop is cut to its box), ``auto`` (small,
    upright images -- at most CROP_MAX_HEIGHT pixels tall and CROP_ASPECT times
    taller than wide, the shape of ReID crops -- are crops; others are detected).
    """
    from edge_reid.detections import sanitize_boxes
    from edge_reid.preprocess import crop_box

    height, width = image.shape[:2]
    if mode == "crops" or (mode == "auto" and height <= CROP_MAX_HEIGHT and height >= CROP_ASPECT * width):
        return image, None
    boxes, keep = sanitize_boxes(detector.detect(image).boxes, height, width, 0.0)
    boxes = boxes[keep]
    if len(boxes) == 0:
        return None, "no person found"
    if len(boxes) > 1:
        return None, f"{len(boxes)} people: crop it to the one to enroll"
    return crop_box(image, boxes[0]).copy(), None


def too_small_crop(crop: "np.ndarray", input_height: int, input_width: int) -> str | None:
    """Why ``crop`` (H, W[, 3]) is too small to enroll, or None: it must be at least the ReID input's
    ``input_height`` x ``input_width`` pixels divided by :data:`CROP_MAX_ENLARGEMENT` (rounded up) each way."""
    height, width = crop.shape[:2]
    least_h, least_w = -(-input_height // CROP_MAX_ENLARGEMENT), -(-input_width // CROP_MAX_ENLARGEMENT)
    if height >= least_h and width >= least_w:
        return None
    return (f"the person's crop is {width}x{height} px (width x height), smaller than {least_w}x{least_h} px: too few "
            f"pixels to tell them from other people; use a larger photo or crop")


def _has_no_colour(image: "np.ndarray") -> bool:
    """True for a grey (black-and-white) BGR image, all three channels alike (every 8th pixel each way is looked at)."""
    sample = image[::8, ::8]
    return bool((sample[..., 0] == sample[..., 1]).all() and (sample[..., 1] == sample[..., 2]).all())


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@gallery_app.command("enroll")
def enroll(
    images: List[Path] = typer.Argument(..., metavar="IMAGE", help="Photos of the person: files or folders of images."),
    gallery_path: Path = GALLERY_OPTION,
    name: str = typer.Option(..., "--name", "-n", help="The person's name; enrolling an existing name adds photos."),
    mode: str = typer.Option(
        "auto", "--mode", help="crops: images are person crops; detect: find exactly one person per image; "
        "auto: small upright images are crops, others are detected."
    ),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx). Default: bundled OSNet."),
    detector_path: Optional[Path] = typer.Option(None, "--detector", "-d", help="Person detector (.onnx) for images that are not crops. Default: bundled YOLOX-Nano."),
) -> None:
    """Enroll a person from photos (created if the gallery file does not exist).

    A person's crop smaller than the ReID input / 8 each way (16x32 px, width x height, for the bundled OSNet) is skipped
    by name: too few pixels to tell them from other people.

    Example:

    \b
      edge-reid gallery enroll --gallery people.edgereid --name Alice \\
          alice1.jpg alice2.jpg
    """
    name = terminal.typed_text(name, "--name")
    if not name.strip():
        raise typer.BadParameter("give the person's name (it is empty)", param_hint="--name")
    _check_name_option(name)

    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder
    from edge_reid.matching.gallery_lock import gallery_lock
    from edge_reid.output_paths import check_distinct_outputs, check_writable

    if mode not in ("auto", "crops", "detect"):
        raise typer.BadParameter("choose auto, crops or detect", param_hint="--mode")
    check_distinct_outputs({"--gallery": gallery_path}, [("the image", path) for path in images] + [("--model", model)])
    check_writable(gallery_path, "gallery")
    embedder = Embedder(model)
    detector = PersonDetector(detector_path) if mode != "crops" else None
    with gallery_lock(gallery_path, "edge-reid gallery enroll"):
        _enroll(gallery_path, name, images, embedder, detector, mode)


def _enroll(gallery_path: Path, name: str, images: List[Path], embedder, detector, mode: str) -> None:
    import numpy as np

    from edge_reid.data.images import SkippedFile, UnreadableImageError, describe_skipped, read_image
    from edge_reid.matching.gallery import Gallery

    gallery = Gallery.open(
        gallery_path, embedder.dim, embedder.model_id, embedder.model_path.name, create=True,
        earlier_model_ids=embedder.earlier_model_ids,
    )
    try:
        existing = gallery.enrollment_target(name)  # before any photo is read or embedded
    except ValueError as exc:
        raise DataError(f"{gallery_path}: {exc}") from None
    rows, skipped, grey = [], [], []
    paths = _expand_images(images)
    with Progress(
        TextColumn("[bold]enrolling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as progress:
        for path in progress.track(paths, total=len(paths)):  # phone photos: a second or more each on a small board
            try:
                image = read_image(path)
            except UnreadableImageError as exc:
                skipped.append(exc.skipped())
                continue
            crop, reason = person_crop(image, detector, mode)
            if crop is not None:
                reason = too_small_crop(crop, embedder.spec.height, embedder.spec.width)
                crop = None if reason else crop
            if crop is None:
                skipped.append(SkippedFile(path, reason))
                continue
            if _has_no_colour(image):
                grey.append(path)
            # Embedded now, not kept: a phone photo's person crop is tens of MB, and a hundred would not fit a Jetson.
            rows.append(embedder.embed_crops([crop]))
            del image, crop
    if not rows:
        found = f"skipped {describe_skipped(skipped)}" if skipped else f"no image file (.jpg, .png, ...) in {', '.join(map(str, images))}"
        raise DataError(f"no usable image to enroll {name!r} ({found})")
    before = gallery.embedding_counts(existing.identity_id)[0] if existing is not None else 0
    embeddings = np.concatenate(rows)
    _warn_of_other_names_alike(gallery, name, embeddings)
    identity_id = gallery.enroll(name, embeddings)
    added = gallery.embedding_counts(identity_id)[0] - before
    gallery.save(gallery_path)
    again = f"; {len(rows) - added} already enrolled, not stored twice" if added < len(rows) else ""
    stored = gallery.get(identity_id).name  # as stored: surrounding spaces removed (canonical_name)
    console.print(f"enrolled {added} image(s) as {escape(repr(stored))} (identity {identity_id}) in {escape(str(gallery_path))}{again}")
    if skipped:
        console.print(f"[yellow]skipped[/] {escape(describe_skipped(skipped))}")
    if grey:
        names = ", ".join(path.name for path in grey[:10]) + (f" and {len(grey) - 10} more" if len(grey) > 10 else "")
        console.print(
            f"[yellow]warning:[/] {len(grey)} photo(s) without colour ({escape(names)}): a colour camera's view of "
            f"the person looks unlike them (ReID compares clothing colours); enrol colour photos"
        )


def _warn_of_other_names_alike(gallery, name: str, embeddings) -> None:
    """Warn when the photos, (N, D) float32 unit rows, look like an identity of another name at the default
    ``--reid-threshold``: a run finds the person alike to both names, cannot tell them apart, and takes
    neither (:mod:`edge_reid.identities`), so the person is recognised by no name. Enrolling still goes on
    (twins, a uniform: the operator knows)."""
    from edge_reid.defaults import REID_THRESHOLD
    from edge_reid.matching.gallery import canonical_name
    from edge_reid.thresholds import at_least
    from edge_reid.unit_vectors import mean_direction

    direction = mean_direction(embeddings)  # the person's template, as a run's track has one
    if not len(gallery) or direction is None:
        return
    scores, found = gallery.search(direction[None, :], len(gallery))
    for score, identity_id in zip(scores[0].tolist(), found[0].tolist()):
        if not at_least(score, REID_THRESHOLD):
            break
        other = gallery.get(int(identity_id)).name
        if other is not None and other != canonical_name(name):
            console.print(
                f"[yellow]warning:[/] these photos look like identity {identity_id} {escape(repr(other))} (cosine "
                f"similarity {score:.3f}, at least --reid-threshold's default {REID_THRESHOLD}): a run cannot tell the "
                f"two names apart and recognises neither; if they are one person, enrol under {escape(repr(other))} "
                f"instead (or remove one: edge-reid gallery remove --id N)"
            )


@gallery_app.command("list")
def list_identities(gallery_path: Path = GALLERY_OPTION) -> None:
    """List the identities of a gallery: id, name, enrolled and recent views, sightings, first and last seen.

    A table on a terminal; tab-separated lines (a "#" line, then a header) when the output goes to a
    file or a pipe, or for more than 1000 identities: one line each, at once.

    Example:

    \b
      edge-reid gallery list --gallery people.edgereid
      edge-reid gallery list -g people.edgereid | awk -F'\\t' '$2 != ""'
    """
    if sys.stdout is None:  # started with its standard output closed (>&-)
        raise OutputPathError("gallery list: standard output is closed; redirect it to a file (> identities.txt)")
    gallery = _load(gallery_path)
    columns = ("id", "name", "enrolled", "recent", "count", "first seen", "last seen")
    if not sys.stdout.isatty() or len(gallery) > PLAIN_LIST_ABOVE:
        _list_as_lines(gallery, gallery_path, columns)
        return
    table = Table(title=f"{len(gallery)} identities", caption=escape(f"{gallery_path} ({gallery.model_name or 'unknown model'})"))
    for column in columns:
        table.add_column(column)
    for fields in _listed_rows(gallery):
        table.add_row(*(escape(field) for field in fields))
    terminal.print_table(Console(), table)


#: Identities above which ``gallery list`` prints lines even on a terminal: Rich measures every cell of a table
#: before printing any row, so a large gallery would print nothing for minutes.
PLAIN_LIST_ABOVE = 1000


def _listed_rows(gallery):
    """Each identity's ``gallery list`` fields, as text: id, name, enrolled, recent, count, first and last seen."""
    for identity in gallery.identities:
        enrolled, recent = gallery.embedding_counts(identity.identity_id)
        yield (str(identity.identity_id), identity.name or "", str(enrolled), str(recent), str(identity.count),
               _time(identity.first_seen), _time(identity.last_seen))


def _list_as_lines(gallery, gallery_path: Path, columns: tuple[str, ...]) -> None:
    """``gallery list`` as tab-separated lines (names hold no control characters, so no tab or newline)."""
    out = sys.stdout
    out.write(f"# {len(gallery)} identities: {gallery_path} ({gallery.model_name or 'unknown model'})\n")
    out.write("\t".join(columns) + "\n")
    for fields in _listed_rows(gallery):
        out.write("\t".join(fields) + "\n")
    out.flush()


@gallery_app.command("remove")
def remove(
    gallery_path: Path = GALLERY_OPTION,
    identity_ids: List[int] = typer.Option([], "--id", help="Identity id to remove (repeatable)."),
    names: List[str] = typer.Option([], "--name", "-n", help="Remove the identity with this name (repeatable)."),
) -> None:
    """Remove identities by id or name.

    Examples:

    \b
      edge-reid gallery remove --gallery people.edgereid --name Alice
      edge-reid gallery remove --gallery people.edgereid --id 3 --id 9
    """
    if not identity_ids and not names:
        raise typer.BadParameter("give --id or --name", param_hint="--id/--name")
    names = [terminal.typed_text(name, "--name") for name in names]
    from edge_reid.matching.gallery_lock import gallery_lock

    _refuse_a_missing_gallery(gallery_path)
    with gallery_lock(gallery_path, "edge-reid gallery remove"):
        _remove(gallery_path, identity_ids, names)


def _remove(gallery_path: Path, identity_ids: List[int], names: List[str]) -> None:
    gallery = _load(gallery_path)
    targets = _identities_asked(gallery, gallery_path, identity_ids, names)
    for identity_id in dict.fromkeys(targets):
        gallery.remove(identity_id)
    gallery.save(gallery_path)
    console.print(f"removed {len(set(targets))} identit{'y' if len(set(targets)) == 1 else 'ies'}; {len(gallery)} left")
    _warn_of_temporaries(gallery_path)


def _identities_asked(gallery, gallery_path: Path, identity_ids: List[int], names: List[str]) -> list[int]:
    """The identity ids ``--id`` and ``--name`` options name, in the order given (repeats kept).

    Raises:
        DataError: a name no identity has or several have, or an id not in the gallery.
    """
    targets = list(identity_ids)
    for name in names:
        found = gallery.named(name)
        if not found:
            raise DataError(f"no identity named {name!r} in {gallery_path}")
        if len(found) > 1:
            raise DataError(
                f"{len(found)} identities are named {name!r} in {gallery_path} (ids "
                f"{', '.join(str(i.identity_id) for i in found)}): remove the one you mean with --id"
            )
        targets.append(found[0].identity_id)
    missing = [i for i in targets if i not in gallery]
    if missing:
        raise DataError(f"no identity with id {missing[0]} in {gallery_path}")
    return targets


def _warn_of_temporaries(gallery_path: Path) -> None:
    """After ``gallery remove``: name the temporary files of saves left beside the gallery (a save killed in the
    last :data:`~edge_reid.matching.gallery_lock.LEFTOVER_AGE_S` seconds, or one a program of the user's is making
    without the lock), which may still hold the people removed; they are not deleted here, as a save in progress
    would fail."""
    from edge_reid.matching.gallery_lock import temporaries_of

    left = temporaries_of(gallery_path)
    if left:
        console.print(
            f"[yellow]warning:[/] {len(left)} temporary file(s) of an interrupted or ongoing save of this gallery may "
            f"still hold what was removed: {escape(', '.join(map(str, left)))}; delete them once no program is saving "
            "this gallery"
        )


@gallery_app.command("rename", short_help="Name an identity, or clear its name.")
def rename(
    gallery_path: Path = GALLERY_OPTION,
    identity_id: int = typer.Option(..., "--id", help="Identity id, as `run` reports it (`identity` in events) or `list` shows."),
    name: str = typer.Option(..., "--name", "-n", help="The name to give it (an empty string clears the name)."),
) -> None:
    """Name an identity (e.g. a person `run` met, reported as #7), or clear its name.

    Example:

    \b
      edge-reid gallery rename --gallery people.edgereid --id 7 --name Bob
    """
    name = terminal.typed_text(name, "--name")
    _check_name_option(name)
    from edge_reid.matching.gallery_lock import gallery_lock

    _refuse_a_missing_gallery(gallery_path)
    with gallery_lock(gallery_path, "edge-reid gallery rename"):
        _rename(gallery_path, identity_id, name)


def _rename(gallery_path: Path, identity_id: int, name: str) -> None:
    gallery = _load(gallery_path)
    if identity_id not in gallery:
        raise DataError(f"no identity with id {identity_id} in {gallery_path}")
    others = [i.identity_id for i in gallery.named(name) if i.identity_id != identity_id] if name.strip() else []
    gallery.rename(identity_id, name)
    gallery.save(gallery_path)
    label = repr(name.strip()) if name.strip() else "no name"
    note = f" (also the name of id {', '.join(map(str, others))})" if others else ""
    console.print(f"identity {identity_id} now has {escape(label)}{note}")


@gallery_app.command("export")
def export(
    gallery_path: Path = GALLERY_OPTION,
    output: Optional[Path] = typer.Option(None, "--output", "-o", parser=output_file, metavar="<path>", help="JSON file to write (default, or -: standard output)."),
    identity_ids: List[int] = typer.Option([], "--id", help="Export only the identity with this id (repeatable)."),
    names: List[str] = typer.Option([], "--name", "-n", help="Export only the identity with this name (repeatable)."),
) -> None:
    """Export identities and metadata as JSON, without embeddings (their numbers are given).

    With --id or --name, only those identities: what the gallery stores about one person (name, first and
    last seen, sightings, enrolled and recent views). A new --output file is readable by its owner only.

    Examples:

    \b
      edge-reid gallery export --gallery people.edgereid -o people.json
      edge-reid gallery export --gallery people.edgereid | jq '.identities[].name'
      edge-reid gallery export --gallery people.edgereid --name Alice
    """
    from edge_reid.atomic import write_json_atomic
    from edge_reid.output_paths import check_distinct_outputs, check_writable, is_standard_output

    check_distinct_outputs({"--output": output}, {"--gallery": gallery_path}, standard_output=("--output",))
    names = [terminal.typed_text(name, "--name") for name in names]
    gallery = _load(gallery_path)
    metadata = gallery.metadata()
    if identity_ids or names:
        asked = set(_identities_asked(gallery, gallery_path, identity_ids, names))
        metadata["identities"] = [entry for entry in metadata["identities"] if entry["identity_id"] in asked]
    if output is None or is_standard_output(output):
        json.dump(metadata, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    check_writable(output, "export")
    write_json_atomic(output, metadata, private=True)  # people's names and times: readable by the owner only
    console.print(f"wrote {len(metadata['identities'])} identities to {escape(str(output))}")


def _bar(fraction: float, width: int = 30) -> str:
    return "#" * int(round(fraction * width))


@gallery_app.command("threshold")
def threshold(
    data: Path = typer.Option(..., "--data", help="Labelled crops in Market-1501 or DukeMTMC-reID layout (root or one split folder)."),
    false_match_rate: float = typer.Option(
        0.01, "--fmr", min=0.0, max=1.0,
        help="Target false-match rate: the threshold printed lets through at most this fraction of different-person pairs.",
    ),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx). Default: bundled OSNet."),
    bins: int = typer.Option(20, "--bins", min=2, max=100_000, help="Histogram bins."),
    max_images: int = typer.Option(3000, "--max-images", min=2, help="Use at most this many images (evenly spread)."),
    json_path: Optional[Path] = typer.Option(None, "--json", parser=output_file, metavar="<path>", help="Also write the report here (.json)."),
) -> None:
    """Cosine-similarity histograms of same/different-person pairs and the threshold at a false-match rate.

    Pairs: same person seen by two cameras (positive) and different people (negative).
    For another ReID model, set `edge-reid run`'s three thresholds from it: the value at --fmr 0.01 as
    --threshold (a person found again near where their track was lost: motion supports the match), the
    value at --fmr 0.0001 as --reid-threshold (enrolled or named people: appearance alone decides, so
    false matches must be rarer) and the value at --fmr 0 (above every different-person pair) as
    --unnamed-reid-threshold (people a run saw who come back later: compared with every stored
    identity's views, so rarer still). The defaults, 0.6, 0.82 and 0.91, are the bundled OSNet's. The threshold printed is rounded up to 4 decimals, so its false-match rate is at
    most the target (the rates printed are at that value); --json holds the exact threshold.

    Examples:

    \b
      # --threshold, --reid-threshold, --unnamed-reid-threshold for your model:
      edge-reid gallery threshold --data /data/Market-1501 -m my_reid.onnx
      edge-reid gallery threshold --data /data/Market-1501 -m my_reid.onnx \\
          --fmr 0.0001
      edge-reid gallery threshold --data /data/Market-1501 -m my_reid.onnx \\
          --fmr 0
    """
    import numpy as np

    from edge_reid.atomic import write_json_atomic
    from edge_reid.data.images import describe_skipped, read_images
    from edge_reid.embedder import Embedder
    from edge_reid.evaluation.threshold import labelled_images, pair_similarities, round_up, threshold_report
    from edge_reid.output_paths import check_distinct_outputs, check_writable

    if not data.is_dir():
        raise DataError(f"{data} is a file, not a data folder; give --data the folder of labelled crops (Market-1501 layout)"
                        if data.exists() else f"data folder {data} does not exist")
    if json_path is not None:
        check_distinct_outputs({"--json": json_path}, {"--data": data, "--model": model})
        check_writable(json_path, "threshold report")
    paths, pids, cams, skipped_names = labelled_images(data)
    if len(paths) > max_images:
        pick = np.linspace(0, len(paths) - 1, max_images).round().astype(int)
        paths, pids, cams = [paths[i] for i in pick], pids[pick], cams[pick]
    crops, used, unreadable = read_images(paths)
    readable = set(used)
    keep = [index for index, path in enumerate(paths) if path in readable]
    if len(crops) < 2:
        raise DataError(f"{data}: no labelled person crops in Market-1501 layout (names like 0001_c1s1_000151_01.jpg, or "
                        "DukeMTMC-reID's 0001_c2_f0046985.jpg)")
    pids, cams = pids[keep], cams[keep]
    embedder = Embedder(model)
    embeddings = np.concatenate([embedder.embed_crops(crops[i : i + 256]) for i in range(0, len(crops), 256)])
    positives, negatives = pair_similarities(embeddings, pids, cams)
    if positives.size == 0 or negatives.size == 0:
        raise DataError(f"{data}: need people seen by two cameras and at least two people to form positive and "
                        "negative pairs")
    report = threshold_report(positives, negatives, false_match_rate, bins)

    table = Table(title=f"cosine similarity, {len(crops)} crops of {len(set(pids.tolist()))} people "
                        f"({report.positives} same-person pairs, {report.negatives} different-person pairs)")
    for column in ("similarity", "same person", "different people"):
        table.add_column(column)
    for low, high, pos, neg in zip(report.edges[:-1], report.edges[1:], report.positive_hist, report.negative_hist):
        table.add_row(f"{low:5.2f} .. {high:5.2f}", f"{pos:6.1%} {_bar(pos)}", f"{neg:6.1%} {_bar(neg)}")
    terminal.print_table(Console(), table)
    skipped_note = f"; skipped {skipped_names} junk/distractor/unnamed files" if skipped_names else ""
    if unreadable:
        skipped_note += f"; skipped {escape(describe_skipped(unreadable))}"
    # Rounded up, never to nearest: 4 decimals below the exact threshold could pass more negatives than the target.
    shown = round_up(report.threshold, 4)
    console.print(
        f"threshold {shown:.4f} (exactly {report.threshold:.6f}, rounded up) at false-match rate "
        f"{float(np.mean(negatives >= shown)):.4%} (target {false_match_rate:.4%}): true-match rate "
        f"{float(np.mean(positives >= shown)):.2%}{skipped_note}"
    )
    for warning in report.sample_warnings():
        console.print(f"[yellow]warning:[/] {warning}")
    print(f"{shown:.4f}")
    if json_path is not None:
        write_json_atomic(json_path, dict(report.to_dict(), data=str(data), images=len(crops),
                                          model=str(embedder.model_path), model_id=embedder.model_id))
