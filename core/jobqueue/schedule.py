"""Cron arithmetic for scheduled jobs (timezone-aware, results in UTC)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

from croniter import croniter

from core.settings import to_prefect_cron


def validate_schedule(cron: str, timezone: str) -> str:
    """The 5-field cron to use; raises ValueError naming what is wrong."""
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown timezone {timezone!r}") from None
    try:
        return to_prefect_cron(cron)
    except ValueError as exc:
        raise ValueError(f"cron_expression: {exc}") from None


def next_run(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after``, in UTC."""
    local = after.astimezone(zoneinfo.ZoneInfo(timezone))
    return croniter(cron, local).get_next(datetime).astimezone(UTC)
