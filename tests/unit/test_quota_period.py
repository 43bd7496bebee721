"""The quota ledger's period follows the reset schedule (cron.quotaResetSchedule), not the calendar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.cron import previous_run
from core.profiles.quota import period_of, period_window

MID_MONTH = "0 0 15 * *"


@pytest.mark.parametrize(("moment", "period"), [
    (datetime(2026, 1, 15, 0, 0, tzinfo=UTC), "2026-01-15T00:00Z"),   # the reset itself opens it
    (datetime(2026, 1, 20, 9, 30, tzinfo=UTC), "2026-01-15T00:00Z"),
    (datetime(2026, 2, 1, 0, 0, tzinfo=UTC), "2026-01-15T00:00Z"),    # a month boundary is no reset
    (datetime(2026, 2, 10, 18, 0, tzinfo=UTC), "2026-01-15T00:00Z"),
    (datetime(2026, 2, 14, 23, 59, 59, 999999, tzinfo=UTC), "2026-01-15T00:00Z"),
    (datetime(2026, 2, 15, 0, 0, tzinfo=UTC), "2026-02-15T00:00Z"),
    (datetime(2026, 2, 15, 0, 0, 30, tzinfo=UTC), "2026-02-15T00:00Z"),
    (datetime(2026, 1, 3, tzinfo=UTC), "2025-12-15T00:00Z"),            # across a year boundary
])
def test_a_mid_month_reset_makes_periods_from_the_15th_to_the_14th(moment, period):
    assert period_of(moment, schedule=MID_MONTH, timezone="UTC") == period


def test_the_default_schedule_gives_calendar_months():
    assert period_of(datetime(2026, 11, 30, 23, 59, tzinfo=UTC), schedule="0 0 1 * *", timezone="UTC") == (
        "2026-11-01T00:00Z")


def test_the_reset_fires_in_the_configured_timezone():
    # Midnight of the 15th in Madrid (UTC+1 in winter) is 23:00 UTC on the 14th.
    madrid = {"schedule": MID_MONTH, "timezone": "Europe/Madrid"}
    assert period_of(datetime(2026, 2, 14, 22, 59, tzinfo=UTC), **madrid) == "2026-01-14T23:00Z"
    assert period_of(datetime(2026, 2, 14, 23, 0, tzinfo=UTC), **madrid) == "2026-02-14T23:00Z"
    # Summer time: UTC+2.
    assert period_of(datetime(2026, 7, 20, tzinfo=UTC), **madrid) == "2026-07-14T22:00Z"


def test_period_names_sort_in_time_order():
    moments = [datetime(2025, 12, 20, tzinfo=UTC), datetime(2026, 1, 16, tzinfo=UTC),
               datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 10, 15, 1, tzinfo=UTC)]
    names = [period_of(m, schedule=MID_MONTH, timezone="UTC") for m in moments]
    assert names == sorted(names) and len(set(names)) == 4


def test_previous_run_is_at_or_before():
    at = datetime(2026, 2, 15, tzinfo=UTC)
    assert previous_run(MID_MONTH, "UTC", at) == at
    assert previous_run(MID_MONTH, "UTC", at.replace(microsecond=1)) == at
    assert previous_run("*/15 * * * *", "UTC", datetime(2026, 2, 15, 10, 14, 59, tzinfo=UTC)) == (
        datetime(2026, 2, 15, 10, 0, tzinfo=UTC))


def test_period_window_spans_one_reset_to_the_next():
    start, end = period_window(datetime(2026, 2, 10, tzinfo=UTC), schedule=MID_MONTH, timezone="UTC")
    assert (start, end) == (datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 15, tzinfo=UTC))
