"""When a schedule that should fire does not: the three alarms, decided from plain facts.

- ``late_run``: a scheduled run has not started ``late_after`` after its start time (no
  worker polls the pool, the serve process is gone, the pool or queue is paused).
- ``no_scheduled_run``: the job is active and its Prefect schedule is active, yet Prefect
  holds no scheduled run for it (Prefect's scheduler service is down or failing), ``grace``
  after the deployment last changed (the scheduler needs a few seconds to catch up).
- ``overdue``: the last run started more than twice the schedule's interval ago (whatever
  the reason: a paused deployment, a broken schedule, runs that never start).

Pure: the operations layer gathers the facts from Prefect and the history tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from core.cron import next_run

AlarmKind = Literal["late_run", "no_scheduled_run", "overdue"]
ALARM_KINDS: tuple[AlarmKind, ...] = ("late_run", "no_scheduled_run", "overdue")


@dataclass(frozen=True)
class Alarm:
    kind: AlarmKind
    reason: str
    since: datetime  # when the condition began (as far as the facts tell)

    def view(self) -> dict[str, str]:
        return {"kind": self.kind, "reason": self.reason, "since": self.since.isoformat()}


@dataclass(frozen=True)
class ScheduleFacts:
    """What is known of one job's schedule at one instant."""

    active: bool  # the job's row (the config tables are the truth)
    schedule: str  # 5-field cron
    timezone: str
    deployed: bool = True
    paused: bool = False  # the deployment, in Prefect
    schedule_active: bool | None = None  # the deployment's schedule, in Prefect (None: it has none)
    deployment_changed: datetime | None = None  # Prefect's ``updated`` of the deployment
    deployment_created: datetime | None = None
    next_scheduled: datetime | None = None  # Prefect's earliest scheduled (not yet late) run
    late_since: datetime | None = None  # expected start of the oldest run Prefect marked Late
    last_run: datetime | None = None  # start of the newest run of the job's history


def interval(cron: str, timezone: str, at: datetime) -> timedelta:
    """The gap between the schedule's next two fire times after ``at``."""
    first = next_run(cron, timezone, at)
    return next_run(cron, timezone, first) - first


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def schedule_alarms(facts: ScheduleFacts, now: datetime, *, late_after: timedelta,
                    grace: timedelta) -> list[Alarm]:
    """The alarms of one job (none for an inactive job: it is not meant to run)."""
    if not facts.active:
        return []
    alarms: list[Alarm] = []
    if facts.late_since is not None and now - facts.late_since >= late_after:
        alarms.append(Alarm("late_run", f"a run scheduled for {facts.late_since.isoformat(timespec='seconds')} "
                                        f"has not started after {_ago(now - facts.late_since)} "
                                        "(is a worker polling its pool, or the serve process running?)",
                            facts.late_since))
    if not facts.deployed:
        alarms.append(Alarm("no_scheduled_run", "no deployment in Prefect: nothing will run it "
                                                "(prefect deploy --all, or deployments.serve)", now))
    elif (facts.schedule_active and not facts.paused and facts.next_scheduled is None
          and facts.late_since is None):
        changed = facts.deployment_changed or now
        if now - changed >= grace:
            alarms.append(Alarm("no_scheduled_run",
                                f"Prefect holds no scheduled run for the active schedule {facts.schedule!r} "
                                f"({facts.timezone}) {_ago(now - changed)} after the deployment changed: "
                                "is the Prefect server's scheduler service running?", changed))
    reference = facts.last_run or facts.deployment_created
    if reference is not None:
        every = interval(facts.schedule, facts.timezone, reference)
        if now - reference > 2 * every:
            what = "the last run started" if facts.last_run else "no run since the deployment was created"
            alarms.append(Alarm("overdue", f"{what} {_ago(now - reference)} ago, more than twice the "
                                           f"schedule's interval ({_ago(every)})", reference + 2 * every))
    return alarms
