"""Quota tasks: reserve before a batch, settle after it (ledger rows in the app database)."""

from __future__ import annotations

from dataclasses import dataclass

from core.db import quota, session_scope
from core.db.types import utcnow
from tasks._common import db_task, db_url


@dataclass(frozen=True)
class QuotaGrant:
    provider: str
    period: str
    requested: int
    granted: int
    remaining: int




@db_task
async def reserve_quota(
    provider: str, requested: int, *, monthly_limit: int, respect_quota: bool = True
) -> QuotaGrant:
    """Atomically reserve up to ``requested`` calls of this month's quota."""
    period = quota.period_of(utcnow())
    with session_scope(db_url()) as session:
        granted, state = quota.reserve(
            session, provider=provider, period=period, requested=requested,
            monthly_limit=monthly_limit, enforce_limit=respect_quota,
        )
    return QuotaGrant(provider, period, requested, granted, state.remaining)


@db_task
async def settle_quota(grant: QuotaGrant, used: int) -> int:
    """Record ``used`` calls against ``grant``, release the rest; returns calls remaining."""
    with session_scope(db_url()) as session:
        state = quota.settle(session, provider=grant.provider, period=grant.period,
                             reserved=grant.granted, used=used)
    return state.remaining


@db_task
async def mark_provider_quota_exhausted(grant: QuotaGrant) -> None:
    """The provider said the month is spent: make the ledger agree so later runs stop early."""
    with session_scope(db_url()) as session:
        quota.mark_exhausted(session, provider=grant.provider, period=grant.period)
