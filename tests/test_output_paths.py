"""Output paths that can never overwrite an input or each other (edge_reid.output_paths)."""

from __future__ import annotations

import os
import stat

import pytest

from edge_reid.errors import OutputPathError
from edge_reid.output_paths import check_distinct_outputs, check_writable, is_standard_output, same_file


def test_same_file_sees_through_links_dots_and_missing_files(tmp_path):
    video = tmp_path / "video.avi"
    video.write_bytes(b"frames")
    (tmp_path / "sub").mkdir()
    os.symlink(video, tmp_path / "link.avi")
    os.link(video, tmp_path / "hard.avi")
    os.symlink(tmp_path / "sub", tmp_path / "sublink")
    assert same_file(video, tmp_path / "sub" / ".." / "video.avi")
    assert same_file(video, tmp_path / "link.avi")
    assert same_file(tmp_path / "hard.avi", tmp_path / "link.avi"), "a hard link is the same inode"
    # Not yet existing: compared through the resolved folder.
    assert same_file(tmp_path / "sublink" / "new.jsonl", tmp_path / "sub" / "new.jsonl")
    assert not same_file(tmp_path / "sub" / "a.jsonl", tmp_path / "sub" / "b.jsonl")
    copy = tmp_path / "copy.avi"
    copy.write_bytes(video.read_bytes())
    assert not same_file(video, copy), "equal bytes are another file"


def test_an_output_on_an_input_or_on_another_output_is_refused(tmp_path):
    video = tmp_path / "copy.avi"
    video.write_bytes(b"frames")
    os.symlink(video, tmp_path / "link.avi")
    with pytest.raises(OutputPathError, match=r"--output .*link.avi is the same file as --source .*copy.avi: writing it would destroy"):
        check_distinct_outputs({"--output": tmp_path / "link.avi"}, {"--source": video})
    with pytest.raises(OutputPathError, match=r"--events .*x and --output .*x are the same file"):
        check_distinct_outputs({"--events": tmp_path / "x", "--summary": None, "--output": tmp_path / "x"})
    with pytest.raises(OutputPathError, match="--out .* is the same folder as --data"):
        check_distinct_outputs({"--out": tmp_path}, [("--data", tmp_path)])
    check_distinct_outputs({"--events": tmp_path / "e.jsonl", "--output": tmp_path / "o.mp4"}, {"--source": video, "--model": None})
    assert not (tmp_path / "e.jsonl").exists(), "checking touches no file"


def test_the_bundled_models_are_inputs_even_when_no_model_is_named(tmp_path):
    """Without --model/--detector a command reads the bundled files: an output there would destroy them."""
    from edge_reid.assets import DEFAULT_DETECTOR, DEFAULT_REID_MODEL

    with pytest.raises(OutputPathError, match="--summary .* is the same file as the bundled ReID model"):
        check_distinct_outputs({"--summary": DEFAULT_REID_MODEL}, {"--model": None})
    with pytest.raises(OutputPathError, match="--events .* is the same file as the bundled detector"):
        check_distinct_outputs({"--events": DEFAULT_DETECTOR})


def test_an_existing_image_inside_an_input_folder_is_refused(tmp_path):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "sub" / "f000.jpg").write_bytes(b"jpeg")
    with pytest.raises(OutputPathError, match=r"--events .*f000.jpg is an image inside --source .*images: writing it would destroy part"):
        check_distinct_outputs({"--events": images / "sub" / "f000.jpg"}, {"--source": images})
    check_distinct_outputs({"--events": images / "events.jsonl"}, {"--source": images})  # a new file beside the input is fine
    (images / "results.json").write_text("{}")  # an earlier run's results there: not an input, may be rewritten
    check_distinct_outputs({"--json": images / "results.json"}, {"--data": images})
    check_distinct_outputs({"--events": tmp_path / "f000.jpg"}, {"--source": images})


def test_a_link_to_an_image_inside_an_input_folder_is_refused(tmp_path):
    """--json link.json, a symbolic link to a data set's image: the check read the link's own name (.json), and the
    atomic write replaced the image it points to with JSON (an input destroyed)."""
    images = tmp_path / "data" / "query"
    images.mkdir(parents=True)
    (images / "0055_c2s1_090002_01.jpg").write_bytes(b"jpeg")
    link = tmp_path / "results.json"
    link.symlink_to(images / "0055_c2s1_090002_01.jpg")
    with pytest.raises(OutputPathError, match=r"--json .*results.json \(a link to .*0055_c2s1_090002_01.jpg\) is an image inside --data"):
        check_distinct_outputs({"--json": link}, {"--data": tmp_path / "data"})
    assert (images / "0055_c2s1_090002_01.jpg").read_bytes() == b"jpeg"


def test_a_device_or_pipe_is_not_an_output_file(tmp_path):
    """Whole-file outputs are replaced atomically, which would replace a device node with a regular file."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(OutputPathError, match="summary path .*pipe is not a regular file"):
        check_writable(pipe, "summary")
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)


def test_standard_output_only_where_allowed_and_only_once(tmp_path):
    assert is_standard_output("-") and not is_standard_output("a-b") and not is_standard_output(None)
    check_distinct_outputs({"--events": "-", "--mot": tmp_path / "m.txt"}, standard_output=("--events", "--mot"))
    with pytest.raises(OutputPathError, match=r"--events and --mot all go to standard output \(-\), where only one output can"):
        check_distinct_outputs({"--events": "-", "--mot": "-"}, standard_output=("--events", "--mot"))
    with pytest.raises(OutputPathError, match=r"--output cannot go to standard output \(-\): give a file name"):
        check_distinct_outputs({"--output": "-"}, standard_output=("--events",))


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    blocker = tmp_path / "model.onnx"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match=r"cannot write events to .*model.onnx/sub/e.jsonl: .*model.onnx is a file, not a folder"):
        check_writable(blocker / "sub" / "e.jsonl", "events")


def test_a_refused_command_leaves_no_folder_its_checks_made(tmp_path, capsys):
    """`eval --data nope --json newdir/a/b/r.json` was refused (exit 2) but left newdir/a/b behind."""
    from edge_reid.cli import main

    assert main(["eval", "--data", str(tmp_path / "nope"), "--json", str(tmp_path / "newdir" / "a" / "b" / "r.json")]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "newdir").exists()
    kept = tmp_path / "kept"
    (kept / "a").mkdir(parents=True)
    (kept / "a" / "earlier.json").write_text("{}")
    assert main(["eval", "--data", str(tmp_path / "nope"), "--json", str(kept / "a" / "b" / "r.json")]) == 2
    assert sorted(p.name for p in (kept / "a").iterdir()) == ["earlier.json"], "only what the command made goes"


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--source", "{video}", "--mot", "{out}/"],
        ["run", "--source", "{video}", "--events", "{out}/"],
        ["run", "--source", "{video}", "--gallery", "{out}/"],
        ["eval-mot", "--gt", "{out}", "{video}", "--json", "{out}/"],
        ["gallery", "export", "--gallery", "{video}", "--output", "{out}/"],
        ["run", "--source", "{video}", "--mot", "{out}/."],
        ["run", "--source", "{video}", "--summary", "{out}/.."],
    ],
)
def test_an_output_file_named_with_a_trailing_slash_is_refused(tmp_path, capsys, command):
    """`--mot newdir/` was read as the file `newdir` (pathlib drops the slash) and wrote a file there."""
    from edge_reid.cli import main

    video = tmp_path / "clip.avi"
    video.write_bytes(b"not read")
    out = tmp_path / "newdir"
    argv = [part.format(video=video, out=out) for part in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{argv[-1]} names a folder; give a file name in that folder" in err
    assert not out.exists()
