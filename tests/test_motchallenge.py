import numpy as np
import pytest

from edge_reid.errors import DataError
from edge_reid.mot_writer import MotWriter, write_rows
from edge_reid.motchallenge import format_row, read_rows, read_sequence_info


def test_writer_rows_are_one_based_left_top_width_height(tmp_path):
    path = tmp_path / "out.txt"
    writer = MotWriter(path)
    writer.write_frame(0, [3, 7], np.array([[10, 20, 40, 100], [5.5, 6.25, 15.5, 26.25]]), [0.9, 0.25])
    writer.write_frame(4, [], np.zeros((0, 4)), [])
    writer.write_frame(5, [3], np.array([[11, 21, 41, 101]]), [0.5])
    writer.close()
    writer.close()
    lines = path.read_text().splitlines()
    assert lines[0] == "1,3,10.00,20.00,30.00,80.00,0.9000,-1,-1,-1"
    assert lines[1] == "1,7,5.50,6.25,10.00,20.00,0.2500,-1,-1,-1"
    assert lines[2].startswith("6,3,11.00,21.00,30.00,80.00,")
    assert writer.rows == 3
    rows = read_rows(path)
    assert rows.shape == (3, 10)
    np.testing.assert_allclose(rows[:, :7], [[1, 3, 10, 20, 30, 80, 0.9], [1, 7, 5.5, 6.25, 10, 20, 0.25], [6, 3, 11, 21, 30, 80, 0.5]])
    assert (rows[:, 7:] == -1).all()


def test_rows_round_trip_and_short_rows_get_defaults(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("2, 4, 1, 2, 3, 4\n\n3,4,1.5,2,3,4,0.7\n")
    rows = read_rows(path)
    np.testing.assert_allclose(rows[0], [2, 4, 1, 2, 3, 4, 1, -1, -1, -1])
    np.testing.assert_allclose(rows[1, :7], [3, 4, 1.5, 2, 3, 4, 0.7])
    copy = tmp_path / "copy.txt"
    write_rows(copy, rows)
    np.testing.assert_allclose(read_rows(copy), rows)
    assert format_row(1, 2, (0, 0, 1, 1), 1.0) == "1,2,0.00,0.00,1.00,1.00,1.0000,-1,-1,-1\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2,3\n", "line 1: 3 values"),
        ("1,2,3,4,5,6\n1,2,a,4,5,6\n", "line 2: not a number"),
        ("1,2,3,4,nan,6\n", "line 1: NaN or infinite"),
        ("0,2,3,4,5,6\n", "frame 0 is not a 1-based frame number"),
        ("1.5,2,3,4,5,6\n", "not a 1-based frame number"),
        ("1,2,3,4,-5,6\n", "negative box width"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_rows(path)
    assert "bad.txt" in str(info.value)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_rows(tmp_path / "nothing.txt", "tracking result")


def test_sequence_info_of_the_shared_ground_truth(vtest_gt_dir):
    info = read_sequence_info(vtest_gt_dir)
    assert (info.length, info.frame_rate, info.width, info.height) == (795, 10.0, 768, 576)
    assert info.gt_path.is_file()
    rows = read_rows(info.gt_path)
    assert rows.shape == (4650, 10) and rows[:, 0].min() == 1 and rows[:, 0].max() <= 795


def test_sequence_info_errors(tmp_path):
    with pytest.raises(DataError, match="nope: ground-truth folder not found"):
        read_sequence_info(tmp_path / "nope")
    with pytest.raises(DataError, match="seqinfo.ini is missing"):
        read_sequence_info(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=x\n")
    with pytest.raises(DataError, match="not a valid seqinfo.ini"):
        read_sequence_info(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("garbage\n", "line 1 comes before any [section] header"),
        ("[Sequence]\nname=x\n", "its [Sequence] section has no seqLength"),
        ("[Other]\nseqLength=5\n", "it has no [Sequence] section"),
        ("[Sequence]\nseqLength=5\ngarbage\n", "line 3 is not key=value"),
        ("[Sequence]\nseqLength=5\n[Sequence]\n", "section [Sequence] appears twice"),
    ],
)
def test_a_malformed_seqinfo_is_one_line_naming_the_file_and_what_is_expected(tmp_path, text, problem):
    ini = tmp_path / "seqinfo.ini"
    ini.write_text(text)
    with pytest.raises(DataError) as caught:
        read_sequence_info(tmp_path)
    assert str(caught.value) == (f"{ini}: not a valid seqinfo.ini: expected a [Sequence] section with seqLength "
                                 f"(the number of frames); {problem}")


@pytest.mark.parametrize(("lines", "message"), [("seqLength=abc", "seqLength='abc' is not an integer"),
                                                 ("seqLength=5\nframeRate=fast", "frameRate='fast' is not a number")])
def test_a_seqinfo_value_that_is_not_a_number_is_named(tmp_path, lines, message):
    (tmp_path / "seqinfo.ini").write_text(f"[Sequence]\n{lines}\n")
    with pytest.raises(DataError) as caught:
        read_sequence_info(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'seqinfo.ini'}: {message}"
