"""Optimization-profile validation and sub-batch planning above the profile's max."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_reid.batching import plan_sub_batches
from edge_reid.tensorrt.errors import EngineBuildError
from edge_reid.tensorrt.profile import BatchProfile


def test_default_profile():
    profile = BatchProfile()
    assert (profile.min, profile.opt, profile.max) == (1, 16, 64)
    assert str(profile) == "1/16/64"


@pytest.mark.parametrize("sizes", [(0, 1, 1), (2, 1, 4), (1, 8, 4), (4, 4, 3), (-1, 1, 1)])
def test_invalid_profiles_are_rejected_with_the_values(sizes):
    with pytest.raises(EngineBuildError) as info:
        BatchProfile(*sizes)
    message = str(info.value)
    assert "--min-batch" in message and f"min={sizes[0]}" in message and f"max={sizes[2]}" in message


def test_non_integer_profile_rejected():
    with pytest.raises(EngineBuildError, match="integers"):
        BatchProfile(1, 2.5, 4)
    with pytest.raises(EngineBuildError, match="integers"):
        BatchProfile(True, 2, 4)


def test_shapes_for_set_shape():
    assert BatchProfile(2, 8, 32).shapes((3, 256, 128)) == ((2, 3, 256, 128), (8, 3, 256, 128), (32, 3, 256, 128))


def test_execution_batch_pads_to_min_and_refuses_above_max():
    profile = BatchProfile(4, 8, 16)
    assert profile.execution_batch(1) == 4
    assert profile.execution_batch(4) == 4
    assert profile.execution_batch(9) == 9
    assert profile.execution_batch(16) == 16
    with pytest.raises(ValueError, match="split"):
        profile.execution_batch(17)
    with pytest.raises(ValueError):
        profile.execution_batch(0)


def test_sub_batches_split_above_the_profile_max():
    profile = BatchProfile(1, 16, 64)
    assert plan_sub_batches(150, profile.max) == [(0, 64), (64, 128), (128, 150)]
    assert plan_sub_batches(64, profile.max) == [(0, 64)]
    assert plan_sub_batches(0, profile.max) == []


@given(count=st.integers(0, 500), mx=st.integers(1, 80))
def test_sub_batches_cover_everything_in_order_and_each_runs_as_is(count, mx):
    profile = BatchProfile(1, 1, mx)
    ranges = plan_sub_batches(count, profile.max)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(count))
    assert all(1 <= b - a <= mx for a, b in ranges)
    assert all(profile.execution_batch(b - a) == b - a for a, b in ranges)


def test_round_trip_dict():
    profile = BatchProfile(2, 4, 8)
    assert BatchProfile.from_dict(profile.to_dict()) == profile
    with pytest.raises(EngineBuildError, match="min/opt/max"):
        BatchProfile.from_dict({"min": 1})
