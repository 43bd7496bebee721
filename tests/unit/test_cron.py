"""Cron text: typos that croniter accepts are refused with the field named."""

from __future__ import annotations

import pytest

from core.cron import check_cron, to_prefect_cron, validate_schedule


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
