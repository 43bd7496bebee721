"""The three alarms of a schedule that does not fire, decided from plain facts (time is given)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.runs.alarms import ScheduleFacts, interval, schedule_alarms

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LATE, GRACE = timedelta(minutes=5), timedelta(minutes=3)
HEALTHY = ScheduleFacts(active=True, schedule="*/15 * * * *", timezone="UTC", schedule_active=True,
                        deployment_changed=NOW - timedelta(days=1), deployment_created=NOW - timedelta(days=2),
                        next_scheduled=NOW + timedelta(minutes=10), last_run=NOW - timedelta(minutes=5))


def kinds(facts: ScheduleFacts) -> list[str]:
    return [a.kind for a in schedule_alarms(facts, NOW, late_after=LATE, grace=GRACE)]


def test_a_healthy_schedule_raises_nothing() -> None:
    assert kinds(HEALTHY) == []


def test_a_run_late_beyond_the_threshold_is_an_alarm_and_not_before() -> None:
    assert kinds(replace(HEALTHY, late_since=NOW - timedelta(minutes=4))) == []
    [alarm] = schedule_alarms(replace(HEALTHY, late_since=NOW - timedelta(minutes=6)), NOW, late_after=LATE, grace=GRACE)
    assert alarm.kind == "late_run" and "6 min" in alarm.reason and alarm.since == NOW - timedelta(minutes=6)


def test_no_scheduled_run_for_an_active_schedule_is_an_alarm_after_the_grace() -> None:
    missing = replace(HEALTHY, next_scheduled=None)
    [alarm] = schedule_alarms(missing, NOW, late_after=LATE, grace=GRACE)
    assert alarm.kind == "no_scheduled_run" and "scheduler" in alarm.reason and "'*/15 * * * *'" in alarm.reason
    # Just changed: the scheduler gets its grace to create the runs.
    assert kinds(replace(missing, deployment_changed=NOW - timedelta(minutes=1))) == []
    # Paused or inactive in Prefect: no run is expected from the scheduler (that is drift).
    assert kinds(replace(missing, paused=True)) == []
    assert kinds(replace(missing, schedule_active=False)) == []
    # A Late run counts as a run the scheduler made: the late alarm speaks for it.
    assert kinds(replace(missing, late_since=NOW - timedelta(minutes=1))) == []


def test_a_missing_deployment_is_an_alarm_for_an_active_job_only() -> None:
    gone = replace(HEALTHY, deployed=False, schedule_active=None, next_scheduled=None, deployment_created=None)
    assert kinds(gone) == ["no_scheduled_run"]
    assert kinds(replace(gone, active=False)) == []


def test_a_last_run_older_than_twice_the_interval_is_overdue() -> None:
    assert kinds(replace(HEALTHY, last_run=NOW - timedelta(minutes=29))) == []
    [alarm] = schedule_alarms(replace(HEALTHY, last_run=NOW - timedelta(minutes=31)), NOW, late_after=LATE, grace=GRACE)
    assert alarm.kind == "overdue" and "31 min" in alarm.reason and "15 min" in alarm.reason
    # Never ran: counted from the deployment's creation.
    never = replace(HEALTHY, last_run=None, deployment_created=NOW - timedelta(hours=1))
    assert kinds(never) == ["overdue"]
    assert kinds(replace(never, deployment_created=NOW - timedelta(minutes=20))) == []


def test_an_inactive_job_never_alarms() -> None:
    assert kinds(replace(HEALTHY, active=False, next_scheduled=None, late_since=NOW - timedelta(hours=1),
                         last_run=NOW - timedelta(days=9))) == []


def test_the_interval_follows_the_cron_and_its_timezone() -> None:
    assert interval("*/15 * * * *", "UTC", NOW) == timedelta(minutes=15)
    assert interval("0 0 1 * *", "UTC", NOW) == timedelta(days=31)  # Jan 1 -> Feb 1
    # 09:00 in New York across the spring change: 23 h between the two fires.
    assert interval("0 9 * * *", "America/New_York", datetime(2026, 3, 7, 13, 0, tzinfo=UTC)) == timedelta(hours=23)
