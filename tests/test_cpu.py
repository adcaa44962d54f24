import os

import pytest

from edge_reid import cpu
from edge_reid.cpu import usable_cpu_count


@pytest.fixture(autouse=True)
def no_cpu_quota(monkeypatch, tmp_path):
    """The affinity alone, also where the tests run under a container's CPU quota (tests/test_cpu_quota.py)."""
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", tmp_path / "no-cgroups")


def test_usable_cpu_count_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert usable_cpu_count() == 3


def test_usable_cpu_count_without_an_affinity_api(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cpu_count() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpu_count() == 6


def test_threads_per_model_halves_the_cores_this_process_may_use(monkeypatch):
    from edge_reid.cpu import threads_per_model

    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the machine has more cores than the process may use
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert threads_per_model() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {7}, raising=False)
    assert threads_per_model() == 1
