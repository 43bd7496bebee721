"""Manage the fetch queue: add URNs, and re-queue FAILED entries (the seed's manual re-queue)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from core.db import entries, session_scope
from tasks._common import db_task, db_url


@db_task
async def _add(urns: list[str]) -> int:
    with session_scope(db_url()) as session:
        return entries.add_pending(session, urns)


@db_task
async def _requeue(urns: list[str] | None) -> int:
    with session_scope(db_url()) as session:
        return entries.requeue_failed(session, urns)


@flow(name="add-profile-entries")
async def add_profile_entries(urns: list[str]) -> int:
    """Enqueue URNs as PENDING; all are validated first, so one bad URN adds none."""
    added = await _add(urns)
    get_run_logger().info("added %d of %d URNs (the rest were already queued)", added, len(urns))
    return added


@flow(name="requeue-failed")
async def requeue_failed(urns: list[str] | None = None) -> int:
    """Put FAILED entries back to PENDING: all of them, or only ``urns``."""
    count = await _requeue(urns)
    get_run_logger().info("re-queued %d FAILED entries", count)
    return count
