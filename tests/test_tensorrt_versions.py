"""Version gates: which network flags, builder flags and INT8 path for which TensorRT version."""

from __future__ import annotations

import pytest

from edge_reid.tensorrt.errors import EngineBuildError
from edge_reid.tensorrt.versions import (
    Int8Path,
    builder_flag_names,
    choose_int8_path,
    int8_paths,
    is_strongly_typed,
    is_supported,
    network_flag_names,
    parse_version,
    tensorrt_tag,
    unsupported_reason,
)

JETPACK5 = parse_version("8.5.2.2")  # JetPack 5.1
JETPACK60 = parse_version("8.6.2.3")  # JetPack 6.0
JETPACK61 = parse_version("10.3.0.30")  # JetPack 6.1 / 6.2
TRT11 = parse_version("11.4.0.106")


@pytest.mark.parametrize(
    "text, expected",
    [("10.3.0.30", (10, 3, 0, 30)), ("8.6.2", (8, 6, 2)), ("10.7.0.post1", (10, 7, 0)), ("11.0", (11, 0)), (" 9.1.0 ", (9, 1, 0))],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("bad", ["", "ten", "10", "v10.3"])
def test_parse_version_rejects_garbage(bad):
    with pytest.raises(ValueError, match="not a TensorRT version"):
        parse_version(bad)


def test_minimum_version_is_8_5():
    assert not is_supported(parse_version("8.4.3.1"))
    assert "8.5" in unsupported_reason(parse_version("8.2.1"))
    assert is_supported(JETPACK5) and unsupported_reason(JETPACK5) == ""
    assert is_supported(JETPACK61) and is_supported(TRT11)


def test_too_old_names_the_jetpack_edge_reid_installs_on():
    """The reason said "JetPack 5.1 or later", but install_jetson.sh and docs/jetson.md refuse JetPack 5 (Python 3.8)."""
    reason = unsupported_reason(parse_version("8.4.3.1"))
    assert "JetPack 6 or later" in reason and "JetPack 5" not in reason


def test_network_flags_per_version():
    assert network_flag_names(JETPACK5) == ["EXPLICIT_BATCH"]
    assert network_flag_names(JETPACK60) == ["EXPLICIT_BATCH"]
    assert network_flag_names(JETPACK61) == []  # explicit batch is implied, the flag deprecated
    assert network_flag_names(TRT11) == ["STRONGLY_TYPED"]


def test_int8_paths_per_version():
    assert int8_paths(JETPACK5) == (Int8Path.QDQ, Int8Path.IMPLICIT_CALIBRATION)
    assert int8_paths(JETPACK60) == (Int8Path.QDQ, Int8Path.IMPLICIT_CALIBRATION)
    assert int8_paths(JETPACK61) == (Int8Path.QDQ,)
    assert int8_paths(TRT11) == (Int8Path.QDQ,)


def test_choose_int8_path_qdq_everywhere():
    for version in (JETPACK5, JETPACK61, TRT11):
        assert choose_int8_path(version, has_qdq_model=True, has_calibration_data=False) is Int8Path.QDQ


def test_implicit_calibration_only_on_tensorrt_8():
    assert choose_int8_path(JETPACK5, False, True) is Int8Path.IMPLICIT_CALIBRATION
    for version in (JETPACK61, TRT11):
        with pytest.raises(EngineBuildError, match="edge-reid calibrate") as info:
            choose_int8_path(version, False, True)
        assert "--qdq" in str(info.value)


def test_int8_needs_exactly_one_source():
    with pytest.raises(EngineBuildError, match="not both"):
        choose_int8_path(JETPACK5, True, True)
    with pytest.raises(EngineBuildError, match="--calibration-data"):
        choose_int8_path(JETPACK5, False, False)  # 8.x offers both sources
    with pytest.raises(EngineBuildError) as info:
        choose_int8_path(JETPACK61, False, False)
    assert "--qdq" in str(info.value) and "--calibration-data" not in str(info.value)


def test_builder_flags_per_version_and_precision():
    assert builder_flag_names(JETPACK61, "fp16") == ["FP16"]
    assert builder_flag_names(JETPACK61, "int8") == ["INT8", "FP16"]
    assert builder_flag_names(JETPACK5, "int8") == ["INT8", "FP16"]
    # TensorRT 11 removed the precision flags: strongly typed networks only.
    assert is_strongly_typed(TRT11) and not is_strongly_typed(JETPACK61)
    assert builder_flag_names(TRT11, "fp16") == [] and builder_flag_names(TRT11, "int8") == []
    with pytest.raises(ValueError):
        builder_flag_names(JETPACK61, "fp32")


def test_tensorrt_tag():
    assert tensorrt_tag("10.3.0.30") == "10.3.0.30"
    assert tensorrt_tag("10.7.0.post1") == "10.7.0"
