"""Liveness rules of orphan recovery (seed 002): pure, no worker names involved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.jobqueue.recovery import dead_run_reason, stale_after
from core.jobqueue.settings import JobsWorkerSettings


@pytest.mark.parametrize(("flow", "task", "dead"), [
    ("RUNNING", "RUNNING", False),
    (None, None, False),                 # unknown to Prefect: the heartbeat decides
    ("RUNNING", "CRASHED", True),
    ("RUNNING", "CANCELLED", True),
    ("CRASHED", None, True),             # the worker session crashed before the task started
    ("COMPLETED", "RUNNING", True),      # the session ended, the row still says Running
    ("CANCELLED", "RUNNING", True),
    ("CRASHED", "COMPLETED", False),     # the handler returned: never run it again
])
def test_dead_run_reason(flow, task, dead):
    assert (dead_run_reason(flow, task) is not None) is dead


def test_stale_after_is_a_few_heartbeats_capped_by_the_seed_threshold():
    assert stale_after(heartbeat_seconds=10, missed_heartbeats=3, threshold=timedelta(minutes=30)) == timedelta(seconds=30)
    assert stale_after(heartbeat_seconds=600, missed_heartbeats=6, threshold=timedelta(minutes=30)) == timedelta(minutes=30)
    cfg = JobsWorkerSettings()
    assert (cfg.stale_after, cfg.orphan_check_every) == (timedelta(seconds=30), timedelta(seconds=30))
