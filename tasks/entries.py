"""Entry tasks: recover orphans, claim a batch, give claimed entries back."""

from __future__ import annotations

from datetime import timedelta

from core.db import entries, session_scope
from core.db.entries import ClaimedEntry
from tasks._common import db_task, db_url


@db_task
async def release_stale_entries(older_than_minutes: int) -> int:
    """FETCHING entries left behind by a crashed run go back to PENDING."""
    with session_scope(db_url()) as session:
        return entries.release_stale(session, older_than=timedelta(minutes=older_than_minutes))


@db_task
async def claim_entries(limit: int, claimed_by: str) -> list[ClaimedEntry]:
    """Claim the ``limit`` oldest PENDING entries (PENDING -> FETCHING)."""
    with session_scope(db_url()) as session:
        return entries.claim_pending(session, limit=limit, claimed_by=claimed_by)


@db_task
async def release_entries(ids: list[int], reason: str) -> int:
    """Claimed but unfetched entries go back to PENDING."""
    with session_scope(db_url()) as session:
        return entries.release_claimed(session, ids, reason=reason)
