"""``GET /api/v1/jobs/status/overview``: every job with its settings, Prefect's view of it,
its next and last run and its last 24 hours.

The config tables are the truth; what Prefect holds is shown beside it and every
disagreement is listed in ``drift`` (e.g. a deployment paused in the Prefect UI).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from prefect.client.orchestration import get_client

from core.cron import next_run
from core.db.types import utcnow
from deployments.ops.catalog import (
    FIXED_JOBS,
    FixedJob,
    Job,
    ScheduledRowJob,
    all_jobs,
    scheduled_rows,
)
from deployments.ops.configs import JobSettings, read_settings
from deployments.ops.runs import record_crashed, summaries
from tasks.prefect_api import (
    deployment_concurrency,
    flow_run_url,
    next_scheduled_runs,
    read_deployment_or_none,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _drift(settings: JobSettings, deployment: Any, schedule: Any) -> list[str]:
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
    return out


def _job_settings(jobs: list[Job]) -> dict[str, JobSettings]:
    fixed = read_settings([j for j in jobs if isinstance(j, FixedJob)]) if any(
        isinstance(j, FixedJob) for j in jobs) else {}
    rows = {r.id: r for r in scheduled_rows()}
    for job in jobs:
        if isinstance(job, ScheduledRowJob) and job.row_id in rows:
            r = rows[job.row_id]
            fixed[job.id] = JobSettings(r.cron_expression, r.timezone, r.is_enabled, dict(r.job_data))
    return fixed


async def overview(family: str | None = None) -> dict[str, Any]:
    jobs = all_jobs(family)
    now = utcnow()
    settings = _job_settings(jobs)
    names = sorted({j.deployment for j in jobs} | {j.deployment for j in FIXED_JOBS})
    async with get_client() as client:
        found = await asyncio.gather(*(read_deployment_or_none(client, name) for name in names))
        deployments: dict[str, Any] = dict(zip(names, found, strict=True))
        fixed = {deployments[j.deployment].id: j for j in FIXED_JOBS if deployments[j.deployment] is not None}
        next_runs = await next_scheduled_runs(client, list(fixed))
    await record_crashed(fixed)
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
        else:
            sched = schedules.get(job.deployment, {}).get(job.id)
        upcoming = next_runs.get(dep.id) if dep is not None and isinstance(job, FixedJob) else None
        if upcoming is None and s.active and not (dep is not None and dep.paused):
            upcoming = next_run(s.schedule, s.timezone, now)
        items.append({
            "id": job.id, "family": job.family, "title": job.title, "deployment": job.deployment,
            "active": s.active, "schedule": s.schedule, "timezone": s.timezone, "config": s.config,
            "next_run": _iso(upcoming) if s.active else None,
            "prefect": None if dep is None else {
                "deployment_id": str(dep.id), "paused": dep.paused,
                "schedule_active": sched.active if sched is not None else None,
                "concurrency_limit": deployment_concurrency(dep)},
            "drift": _drift(s, dep, sched),
            **stats[job.id],
        })
    ui = flow_run_url("-")
    return {"generated_at": now.isoformat(), "prefect_ui_url": ui.split("/runs/")[0] if ui else None, "jobs": items}
