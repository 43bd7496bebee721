"""Releasing what a dead run (or a dead share of a run) held, before a run claims anything."""


from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prefect import get_run_logger

from core.db import session_scope
from core.profiles import entries, shares
from prefect_api.automations import ENDED_STATES, run_states
from tasks._common import db_task, db_url
from tasks.profiles.release import release_run_claims, sweep_storage_orphans
from tasks.profiles.share import dead_after


async def release_dead_claims(own_run_id: str) -> dict[str, dict[str, int]]:
    """Before a run starts: release the claims of every other run Prefect shows has ended
    (crashed, failed, cancelled), at once rather than after ``fetchingTimeoutMinutes``."""
    with session_scope(db_url()) as session:
        others = [c for c in entries.claimants(session) if c != own_run_id]
    released: dict[str, dict[str, int]] = {}
    for run_id, state in (await run_states(others)).items():
        if state in ENDED_STATES:
            released[run_id] = await release_run_claims(run_id)
    return released


@dataclass(frozen=True)
class Recovered:
    """What a run released before it started: the claims of ended (or silent) runs, by run id,
    and the number of entries orphaned longer than ``cron.fetchingTimeoutMinutes``."""

    dead_runs: dict[str, dict[str, int]]
    stale: int
    storage_orphans: int = 0  # objects a storage outage had left without a row, removed


@db_task
async def recover_before_run(own_run_id: str, older_than_minutes: int) -> Recovered:
    """One task before a run claims anything: release the claims of runs Prefect shows have
    ended (``release_dead_claims``), then those of runs that left entries FETCHING longer than
    ``older_than_minutes`` (runs Prefect cannot tell about: a notebook's run on the ephemeral
    API that was killed) with the same logic, so the ledger is exact without a server too."""
    dead = await release_dead_claims(own_run_id)
    older_than = timedelta(minutes=older_than_minutes)
    with session_scope(db_url()) as session:
        silent = [c for c in entries.stale_claimants(session, older_than=older_than) if c != own_run_id]
        # shares whose worker and run both died
        silent += [s.id for s in shares.take_dead(session, dead_after=dead_after()) if s.id not in silent]
    stale = 0
    for run_id in silent:  # released like a crashed run: adopted, billed, reservation given back
        released = await release_run_claims(run_id)
        dead[run_id] = released
        stale += released.get("entries_adopted", 0) + released.get("entries_released", 0)
    with session_scope(db_url()) as session:  # FETCHING without a claimant (none since 0011)
        stale += entries.release_stale(session, older_than=older_than)
    try:
        orphans = await sweep_storage_orphans()
    except Exception as exc:  # noqa: BLE001 - the store may still be down: the next run tries again
        get_run_logger().warning("objects left by a storage outage not removed yet: %s: %s", type(exc).__name__, exc)
        orphans = 0
    return Recovered(dead, stale, orphans)
