"""``GET /api/v1/jobs/status/overview``: every job with its settings, Prefect's view of it,
its next and last run, its last 24 hours and its alarms.

The config tables are the truth; what Prefect holds is shown beside it and every
disagreement is listed in ``drift`` (e.g. a deployment paused in the Prefect UI). The next
run is Prefect's own next scheduled flow run, never one computed from the cron: an active
schedule for which Prefect holds none is drift, and after a grace an alarm
(``core.runs.alarms``), as are runs left Late and jobs whose last run is overdue.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from prefect.client.orchestration import get_client

from core.db.types import utcnow
from core.runs.alarms import ScheduleFacts, schedule_alarms
from core.settings import get_settings
from deployments.control.catalog import (
    FIXED_JOBS,
    FixedJob,
    Job,
    ScheduledRowJob,
    all_jobs,
    scheduled_rows,
)
from deployments.control.configs import JobSettings, read_settings
from deployments.control.rows import iso
from deployments.control.runs import record_crashed, summaries
from prefect_api import (
    deployment_concurrency,
    flow_run_url,
    late_runs,
    next_runs_by_schedule,
    next_scheduled_runs,
    read_deployment_or_none,
)

NO_SCHEDULED_RUN = "no scheduled run in Prefect for this active schedule (is the scheduler service running?)"


def _drift(settings: JobSettings, deployment: Any, schedule: Any, upcoming: datetime | None = None,
           late: datetime | None = None) -> list[str]:
    if deployment is None:
        return ["deployment missing in Prefect (prefect deploy, deployments.serve, or any config change)"]
    out = []
    if deployment.paused and settings.active:
        out.append("deployment paused in Prefect while active here")
    if schedule is None:
        out.append("no schedule in Prefect")
        return out
    if schedule.active != settings.active:
        out.append(f"Prefect schedule {'active' if schedule.active else 'inactive'}, "
                   f"here {'active' if settings.active else 'inactive'}")
    cron, tz = getattr(schedule.schedule, "cron", None), getattr(schedule.schedule, "timezone", None)
    if (cron, tz or "UTC") != (settings.schedule, settings.timezone):
        out.append(f"Prefect schedule is {cron!r} ({tz}), here {settings.schedule!r} ({settings.timezone})")
    if settings.active and schedule.active and not deployment.paused and upcoming is None and late is None:
        out.append(NO_SCHEDULED_RUN)
    return out


def _settings_drift(job: FixedJob, row: JobSettings) -> list[str]:
    """Settings (environment, config.yml) that ask for another schedule than the config row:
    the row wins once the job is deployed, so such a change would otherwise go unseen."""
    wanted = job.spec.default_schedule(get_settings())
    if wanted is None or wanted.source is None or (wanted.cron, wanted.active) == (row.schedule, row.active):
        return []
    state = "active" if wanted.active else "inactive"
    return [f"settings ({wanted.source}) ask for {wanted.cron!r} {state}, the config row has {row.schedule!r} "
            f"{'active' if row.active else 'inactive'}; the row wins: apply it with PUT /api/v1/jobs/{job.id}/config "
            f"or `jobpipes config {job.id} --schedule '{wanted.cron}' --{state}`"]


def _job_settings(jobs: list[Job]) -> dict[str, JobSettings]:
    fixed = read_settings([j for j in jobs if isinstance(j, FixedJob)]) if any(
        isinstance(j, FixedJob) for j in jobs) else {}
    rows = {r.id: r for r in scheduled_rows()}
    for job in jobs:
        if isinstance(job, ScheduledRowJob) and job.row_id in rows:
            r = rows[job.row_id]
            fixed[job.id] = JobSettings(r.cron_expression, r.timezone, r.is_enabled, dict(r.job_data))
    return fixed


def _started(stats: dict[str, Any]) -> datetime | None:
    last = stats.get("last_run")
    return datetime.fromisoformat(last["started_at"]) if last and last.get("started_at") else None


def _changed(deployment: Any, schedule: Any) -> datetime | None:
    stamps = [t for t in (getattr(deployment, "updated", None), getattr(schedule, "updated", None)) if t]
    return max(stamps) if stamps else None


async def overview(family: str | None = None) -> dict[str, Any]:
    jobs = all_jobs(family)
    now = utcnow()
    settings = _job_settings(jobs)
    alerts = get_settings().alerts
    late_after, grace = timedelta(seconds=alerts.late_after_seconds), timedelta(seconds=alerts.no_schedule_grace_seconds)
    names = sorted({j.deployment for j in jobs} | {j.deployment for j in FIXED_JOBS})
    async with get_client() as client:
        found = await asyncio.gather(*(read_deployment_or_none(client, name) for name in names))
        deployments: dict[str, Any] = dict(zip(names, found, strict=True))
        fixed = {deployments[j.deployment].id: j for j in FIXED_JOBS if deployments[j.deployment] is not None}
        shared = sorted({j.deployment for j in jobs if isinstance(j, ScheduledRowJob) and deployments[j.deployment]})
        next_runs = await next_scheduled_runs(client, list(fixed))
        late = await late_runs(client, [d.id for d in deployments.values() if d is not None])
        by_schedule = await asyncio.gather(*(next_runs_by_schedule(
            client, deployments[n].id, {s.id for s in deployments[n].schedules}) for n in shared))
    await record_crashed(fixed)
    upcoming_by_schedule: dict[uuid.UUID, datetime] = {k: v for d in by_schedule for k, v in d.items()}
    late_by_deployment: dict[uuid.UUID, datetime] = {}
    late_by_schedule: dict[uuid.UUID, datetime] = {}
    for run in late:
        late_by_deployment.setdefault(run.deployment_id, run.expected_start)
        if run.schedule_id is not None:
            late_by_schedule.setdefault(run.schedule_id, run.expected_start)
    schedules = {name: {s.slug or "": s for s in (dep.schedules if dep else [])} for name, dep in deployments.items()}
    stats = summaries(jobs, now)
    items = []
    for job in jobs:
        s = settings.get(job.id)
        if s is None:  # deleted between the two reads
            continue
        dep = deployments.get(job.deployment)
        if isinstance(job, FixedJob):
            sched = dep.schedules[0] if dep is not None and dep.schedules else None
            upcoming = next_runs.get(dep.id) if dep is not None else None
            late_since = late_by_deployment.get(dep.id) if dep is not None else None
        else:
            sched = schedules.get(job.deployment, {}).get(job.id)
            upcoming = upcoming_by_schedule.get(sched.id) if sched is not None else None
            late_since = late_by_schedule.get(sched.id) if sched is not None else None
        facts = ScheduleFacts(
            active=s.active, schedule=s.schedule, timezone=s.timezone, deployed=dep is not None,
            paused=bool(dep is not None and dep.paused), schedule_active=sched.active if sched is not None else None,
            deployment_changed=_changed(dep, sched), deployment_created=getattr(dep, "created", None),
            next_scheduled=upcoming, late_since=late_since, last_run=_started(stats[job.id]))
        alarms = schedule_alarms(facts, now, late_after=late_after, grace=grace)
        drift = _drift(s, dep, sched, upcoming, late_since) + (
            _settings_drift(job, s) if isinstance(job, FixedJob) else [])
        items.append({
            "id": job.id, "family": job.family, "title": job.title, "deployment": job.deployment,
            "active": s.active, "schedule": s.schedule, "timezone": s.timezone, "config": s.config,
            "next_run": iso(upcoming) if s.active else None,
            "late_since": iso(late_since),
            "prefect": None if dep is None else {
                "deployment_id": str(dep.id), "paused": dep.paused,
                "schedule_active": sched.active if sched is not None else None,
                "concurrency_limit": deployment_concurrency(dep)},
            "drift": drift,
            "alarms": [a.view() for a in alarms],
            "health": "alarm" if alarms else "drift" if drift else "ok",
            **stats[job.id],
        })
    ui = flow_run_url("-")
    return {"generated_at": now.isoformat(), "prefect_ui_url": ui.split("/runs/")[0] if ui else None, "jobs": items}
