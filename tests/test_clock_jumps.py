"""The wall clock jumping under a long run: a Jetson without an RTC battery boots with a stale time
that NTP later moves on by years, an operator sets it back, a VM resumes. The gallery's pruning must
measure how long an identity went unseen, not how far the wall clock moved (no real clock is changed:
the gallery module's ``time`` is replaced by a fake one)."""

from __future__ import annotations

import time as real_time

import numpy as np
import pytest

from edge_reid.matching import gallery as gallery_module
from edge_reid.matching.gallery import Gallery

YEAR_S = 365 * 24 * 3600.0
DAY_S = 24 * 3600.0
START = 1_600_000_000.0  # a Jetson's stale boot time (2020)


class FakeClock:
    """A wall clock that can jump and a monotonic clock that only moves on with :meth:`wait`."""

    def __init__(self, wall: float = START) -> None:
        self.wall, self.clock = wall, 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.clock

    def wait(self, seconds: float) -> None:
        self.wall += seconds
        self.clock += seconds

    def jump(self, seconds: float) -> None:
        self.wall += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(gallery_module, "time", fake)
    return fake


def _unit(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _strangers(gallery: Gallery, count: int) -> list[int]:
    return [gallery.add(_unit(seed)) for seed in range(count)]


def test_a_forward_jump_does_not_forget_every_stranger_at_once(clock):
    """NTP moving a stale clock on by 3 years made every identity look 3 years unseen: the next
    `--prune-after 3600` save forgot them all, people seen a minute before included."""
    gallery = Gallery(16)
    ids = _strangers(gallery, 3)
    clock.wait(60)
    clock.jump(3 * YEAR_S)
    assert gallery.prune(3600) == []
    assert sorted(i.identity_id for i in gallery.identities) == ids
    clock.wait(3600)  # an hour later on the monotonic clock they are stale, and pruned
    assert sorted(gallery.prune(3600)) == ids


def test_a_backward_jump_does_not_stop_pruning(clock):
    """An operator setting the clock back a day left identities "last seen tomorrow": none was
    pruned for a day more than `--prune-after` said; the time unseen is the monotonic time."""
    gallery = Gallery(16)
    old, seen_again = _strangers(gallery, 2)
    clock.jump(-DAY_S)
    clock.wait(1800)
    gallery.observe(seen_again)
    last_seen = gallery.get(seen_again).last_seen
    assert last_seen == START  # never backwards: the sighting at the earlier wall time does not lower it
    clock.wait(1801)
    assert gallery.prune(3600) == [old]
    assert gallery.get(seen_again).last_seen == last_seen


def test_a_gallery_loaded_on_a_clock_behind_its_times_is_still_pruned(clock, tmp_path):
    """A gallery saved in 2026 and loaded after a reboot on a 2020 clock had every last_seen years
    in the future: nothing was pruned until the clock caught up. Counted as just seen at the load,
    it is pruned after the time asked for."""
    clock.wall = START + 6 * YEAR_S
    saved = Gallery(16)
    ids = _strangers(saved, 2)
    saved.save(tmp_path / "g.edgereid")
    clock.wall = START  # the reboot: the wall clock back in 2020
    loaded = Gallery.load(tmp_path / "g.edgereid")
    clock.wait(3599)
    assert loaded.prune(3600) == []
    clock.wait(2)
    assert sorted(loaded.prune(3600)) == ids


def test_a_save_after_a_forward_jump_keeps_the_time_unseen_for_the_next_run(clock, tmp_path):
    """People first seen on the stale boot clock, saved after NTP moved it on 3 years: the file said
    they were 3 years unseen, and the next run's first prune forgot them."""
    gallery = Gallery(16)
    ids = _strangers(gallery, 2)
    clock.wait(120)
    clock.jump(3 * YEAR_S)
    gallery.save(tmp_path / "g.edgereid")
    assert all(i.last_seen == pytest.approx(clock.wall - 120) for i in gallery.identities)
    loaded = Gallery.load(tmp_path / "g.edgereid")  # the next run, on the right clock
    clock.wait(60)
    assert loaded.prune(3600) == []
    assert sorted(i.identity_id for i in loaded.identities) == ids
    clock.wait(3600)
    assert sorted(loaded.prune(3600)) == ids


def test_times_the_caller_gives_are_still_compared_as_given(clock):
    """With times of the caller's own and `now` given, pruning is `now - last_seen` as before."""
    gallery = Gallery(16)
    old = gallery.add(_unit(0), timestamp=100.0)
    recent = gallery.add(_unit(1), timestamp=5000.0)
    assert gallery.prune(3600, now=5000.0) == [old]
    assert recent in gallery
    clock.wall = 5000.0 + 3601  # now=None: a time of the caller's is aged by the wall clock
    assert gallery.prune(3600) == [recent]


def test_the_real_clocks_prune_nothing_just_seen():
    """Without the fake: a stranger just added is not pruned (both real clocks agree)."""
    assert gallery_module.time is real_time
    gallery = Gallery(16)
    gallery.add(_unit(0))
    assert gallery.prune(10) == []
