"""The profile fetcher's small database steps: job config, reserve and claim, settle, release, queue."""


from __future__ import annotations

from dataclasses import dataclass

from core.db import session_scope
from core.profiles import entries, job_configs, quota
from core.profiles.entries import ClaimedEntry, EntryOutcome
from core.profiles.job_configs import JobConfig
from core.settings import get_settings
from tasks._common import db_task, db_url


@db_task
async def load_job_config(name: str) -> JobConfig:
    """The job's config (defaults inserted when missing), with ``last_run`` set to now."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        return job_configs.load_for_run(session, name, settings.cron)


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


def claim_batch(
    provider: str, requested: int, claimed_by: str, *, monthly_limit: int, respect_quota: bool = True,
    reset: tuple[str, str] | None = None,
) -> Claim:
    """In one transaction: reserve up to ``requested`` calls, claim that many of the oldest
    PENDING entries (PENDING -> FETCHING), and give back the part of the reservation that
    found no entry, so a crash can never leave a reservation without its entries.

    Plain functions from here to ``finished_entries``: the fetch stage task
    (``tasks.profiles.stage``) calls them in a thread, batch after batch, and retries
    outages itself; a Prefect task per call would cost more than the call. ``reset``: the
    quota reset's (cron, timezone) if the caller read it already (``reset_schedule``)."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        period = quota.current_period(session, settings.cron) if reset is None else quota.period_under(reset)
        granted, state = quota.reserve(
            session, provider=provider, period=period, requested=requested,
            monthly_limit=monthly_limit, enforce_limit=respect_quota,
        )
        batch = entries.claim_pending(session, limit=granted, claimed_by=claimed_by) if granted else []
        if len(batch) < granted:
            state = quota.settle(session, provider=provider, period=period, reserved=granted - len(batch), used=0)
    return Claim(QuotaGrant(provider, period, requested, len(batch), state.remaining), batch, granted)


def reset_schedule() -> tuple[str, str]:
    """(cron, timezone) of the quota reset, which decides the ledger period of a claim."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        return job_configs.reset_schedule(session, settings.cron)


def settle_grant(grant: QuotaGrant, used: int) -> int:
    """Record ``used`` calls against ``grant`` and release the rest; returns calls remaining."""
    with session_scope(db_url()) as session:
        return quota.settle(session, provider=grant.provider, period=grant.period,
                            reserved=grant.granted, used=used).remaining


def mark_quota_exhausted(grant: QuotaGrant) -> None:
    """The provider said the plan is spent: make the ledger agree so later runs stop early."""
    with session_scope(db_url()) as session:
        quota.mark_exhausted(session, provider=grant.provider, period=grant.period)


def finished_entries(ids: list[int]) -> list[EntryOutcome]:
    """Which of ``ids`` are COMPLETED or FAILED (what a crashed batch did finish)."""
    with session_scope(db_url()) as session:
        return entries.finished(session, ids)


@db_task
async def start_quota_period(provider: str, monthly_limit: int, reset_usage: bool) -> quota.QuotaState:
    """Create (or re-limit) the current period's ledger row (the period follows the reset schedule)."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        return quota.start_period(session, provider=provider, period=quota.current_period(session, settings.cron),
                                  monthly_limit=monthly_limit, reset_usage=reset_usage)


@db_task
async def add_pending_entries(urns: list[str]) -> int:
    """Enqueue URNs as PENDING (all validated first); returns how many were new."""
    with session_scope(db_url()) as session:
        return entries.add_pending(session, urns)


@db_task
async def requeue_failed_entries(urns: list[str] | None) -> int:
    """FAILED entries (all, or only ``urns``) back to PENDING; returns how many."""
    with session_scope(db_url()) as session:
        return entries.requeue_failed(session, urns)


