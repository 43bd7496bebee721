"""Quota tasks: reserve before a batch, settle after it (ledger rows in the app database)."""

from __future__ import annotations

from dataclasses import dataclass

from core.db import entries, quota, session_scope
from core.db.entries import ClaimedEntry
from core.db.types import utcnow
from tasks._common import db_task, db_url


@dataclass(frozen=True)
class QuotaGrant:
    provider: str
    period: str
    requested: int
    granted: int
    remaining: int


@dataclass(frozen=True)
class Claim:
    """A reservation and the entries it covers: ``grant.granted == len(entries)``."""

    grant: QuotaGrant
    entries: list[ClaimedEntry]
    quota_granted: int  # what the ledger allowed before looking for entries (0: quota spent)


@db_task
async def reserve_and_claim(
    provider: str, requested: int, claimed_by: str, *, monthly_limit: int, respect_quota: bool = True
) -> Claim:
    """In one transaction: reserve up to ``requested`` calls, claim that many of the oldest
    PENDING entries (PENDING -> FETCHING), and give back the part of the reservation that
    found no entry. One task and one commit per batch instead of two of each; a crash in
    between can no longer leave a reservation without its entries."""
    period = quota.period_of(utcnow())
    with session_scope(db_url()) as session:
        granted, state = quota.reserve(
            session, provider=provider, period=period, requested=requested,
            monthly_limit=monthly_limit, enforce_limit=respect_quota,
        )
        batch = entries.claim_pending(session, limit=granted, claimed_by=claimed_by) if granted else []
        if len(batch) < granted:
            state = quota.settle(session, provider=provider, period=period, reserved=granted - len(batch), used=0)
    return Claim(QuotaGrant(provider, period, requested, len(batch), state.remaining), batch, granted)


def settle_in_session(grant: QuotaGrant, used: int) -> int:
    """``settle_quota`` for code already inside a task (the batch task settles its own grant)."""
    with session_scope(db_url()) as session:
        return quota.settle(session, provider=grant.provider, period=grant.period,
                            reserved=grant.granted, used=used).remaining


@db_task
async def settle_quota(grant: QuotaGrant, used: int) -> int:
    """Record ``used`` calls against ``grant``, release the rest; returns calls remaining."""
    return settle_in_session(grant, used)


@db_task
async def mark_provider_quota_exhausted(grant: QuotaGrant) -> None:
    """The provider said the month is spent: make the ledger agree so later runs stop early."""
    with session_scope(db_url()) as session:
        quota.mark_exhausted(session, provider=grant.provider, period=grant.period)
