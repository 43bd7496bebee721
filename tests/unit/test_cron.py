"""Cron text: typos that croniter accepts are refused with the field named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.cron import check_cron, fires_at, to_prefect_cron, validate_schedule


@pytest.mark.parametrize("cron, field", [("*/61 * * * *", "minute"), ("0 */25 * * *", "hour"),
                                         ("0 0 */32 * *", "day-of-month"), ("0 0 1 */13 *", "month")])
def test_a_step_beyond_the_fields_range_is_refused_naming_the_field(cron, field):
    with pytest.raises(ValueError, match=field):
        check_cron(cron)


@pytest.mark.parametrize("cron", ["*/15 * * * *", "0 9 * * 1-5/2", "0 0 */31 * *", "5,*/30 * * * *"])
def test_real_steps_pass(cron):
    assert check_cron(cron) == cron


def test_the_seeds_six_field_cron_and_timezones():
    assert to_prefect_cron("0 0 0 * * *") == "0 0 * * *"
    with pytest.raises(ValueError, match="seconds"):
        to_prefect_cron("30 0 0 * * *")
    with pytest.raises(ValueError, match="timezone"):
        validate_schedule("0 0 * * *", "posixrules")


@pytest.mark.parametrize("interval, cron", [
    ("interval(seconds=300)", "*/5 * * * *"),  # seed 001's own example
    ("interval(minutes=1)", "* * * * *"), ("interval(seconds=3600)", "0 * * * *"),
    ("interval(hours=6)", "0 */6 * * *"), ("interval(hours=24)", "0 0 * * *")])
def test_the_seeds_interval_form_is_accepted_as_the_cron_of_the_same_pace(interval, cron):
    """Issue 22 item 9: interval(seconds=N) as seed 001's migrations write it."""
    assert to_prefect_cron(interval) == cron
    assert validate_schedule(interval, "UTC") == cron


def test_an_interval_no_cron_keeps_is_refused_naming_the_cron_to_use():
    with pytest.raises(ValueError, match=r"cron_expression: .*420 s.*'\*/10 \* \* \* \*'"):
        validate_schedule("interval(minutes=7)", "UTC")


def test_fires_at_is_a_whole_minute_of_the_cron_in_its_zone():
    assert fires_at("17 3 * * *", "Asia/Kolkata", datetime(2026, 12, 4, 21, 47, tzinfo=UTC))  # 03:17 +05:30
    assert not fires_at("17 3 * * *", "UTC", datetime(2026, 12, 4, 21, 47, tzinfo=UTC))
    assert not fires_at("17 3 * * *", "Asia/Kolkata", datetime(2026, 12, 4, 21, 47, 30, tzinfo=UTC))
    assert fires_at("*/2 * * * *", "UTC", datetime(2026, 12, 4, 18, 36, tzinfo=UTC))
    assert not fires_at("*/2 * * * *", "UTC", datetime(2026, 12, 4, 18, 37, tzinfo=UTC))
