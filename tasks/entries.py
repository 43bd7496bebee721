"""Entry tasks: recover orphans, give claimed entries back (claiming is in tasks.quota.reserve_and_claim)."""

from __future__ import annotations

from datetime import timedelta

from core.db import entries, session_scope
from tasks._common import db_task, db_url


@db_task
async def release_stale_entries(older_than_minutes: int) -> int:
    """FETCHING entries left behind by a crashed run go back to PENDING."""
    with session_scope(db_url()) as session:
        return entries.release_stale(session, older_than=timedelta(minutes=older_than_minutes))


@db_task
async def release_entries(ids: list[int], reason: str) -> int:
    """Claimed but unfetched entries go back to PENDING."""
    with session_scope(db_url()) as session:
        return entries.release_claimed(session, ids, reason=reason)
