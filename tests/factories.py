"""Data factories and small query helpers shared by integration tests."""

from __future__ import annotations

from sqlalchemy import select

from core.db import session_scope
from core.profiles import entries, quota
from core.profiles.models import ApiQuota, Profile, ProfileEntry
from core.runs.models import JobExecutionHistory
from core.settings import get_settings


def urns(n: int, prefix: str = "ACoAATest") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def seed_entries(url: str, values: list[str]) -> None:
    with session_scope(url) as session:
        entries.add_pending(session, values)


def set_quota(url: str, *, limit: int, used: int = 0, provider: str = "rapidapi") -> None:
    with session_scope(url) as session:
        period = quota.current_period(session, get_settings().cron)
        quota.start_period(session, provider=provider, period=period, monthly_limit=limit, reset_usage=True)
        if used:
            quota.settle(session, provider=provider, period=period, reserved=0, used=used)


def ledger(url: str, provider: str = "rapidapi") -> ApiQuota:
    with session_scope(url) as session:
        return session.execute(select(ApiQuota).where(ApiQuota.provider == provider)).scalar_one()


def entry_rows(url: str) -> dict[str, ProfileEntry]:
    with session_scope(url) as session:
        return {e.urn: e for e in session.execute(select(ProfileEntry)).scalars()}


def profile_rows(url: str) -> dict[str, Profile]:
    with session_scope(url) as session:
        return {p.urn: p for p in session.execute(select(Profile)).scalars()}


def history_rows(url: str) -> list[JobExecutionHistory]:
    with session_scope(url) as session:
        return list(session.execute(select(JobExecutionHistory).order_by(JobExecutionHistory.id)).scalars())
