"""benchmarks/soak.py: the growth figures it prints from its minutes, and what it samples."""

from __future__ import annotations

import os

import pytest
from conftest import load_benchmark_script


@pytest.fixture(scope="module")
def soak():
    return load_benchmark_script("soak")


def _minute(soak, minute, frames, rss_mb, fds=8, live=6.0, identities=20, created=0):
    return soak.Minute(minute=minute, seconds=60.0 * minute, frames=frames, passes=frames // 100, rss_mb=rss_mb, fds=fds,
                       live_tracks_mean=live, live_tracks_max=int(live) + 2, identities=identities,
                       identities_created=created, stored_embeddings=10 * identities)


def test_growth_is_the_slope_after_warm_up_and_identities_count_once_the_video_repeats(soak, capsys):
    # 100 frames per pass, 60 frames a minute: minute 2 ends inside pass 2, so minutes 3.. began after pass 1.
    rows = [_minute(soak, m, 60 * m, rss_mb=500.0 + (30.0 if m <= 2 else 0.2 * m), created=[9, 4, 1, 0, 0, 0][m - 1])
            for m in range(1, 7)]
    result = soak.report(rows, warmup=2, video_frames=100)
    assert result["rss_mb_per_10_minutes"] == pytest.approx(2.0)  # 0.2 MB a minute once warm: the warm-up jump left out
    assert result["identities_created_per_minute_while_repeating"] == [1, 0, 0, 0]
    assert (result["fds_min"], result["fds_max"], result["passes"]) == (8, 8, 3)
    assert "slope +2.00 MB per 10 minutes" in capsys.readouterr().out
    assert soak.report(rows[:3], warmup=2, video_frames=100) == {}, "one minute after warm-up: no slope"


def test_it_samples_this_process(soak):
    assert soak.resident_mb() > 10.0
    before = soak.open_descriptors()
    handle = os.open(os.devnull, os.O_RDONLY)
    try:
        assert soak.open_descriptors() == before + 1
    finally:
        os.close(handle)
