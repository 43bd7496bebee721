"""Changing a job's configuration: validated, applied to its Prefect deployment, then stored.

Prefect is called outside any database transaction; if the database write fails, the old
settings are applied back, so the row and the deployment never disagree for long and a
refused change leaves nothing behind (as in ``deployments.control.brand_admin``).

The config tables win: applying a job's row sets its deployment's first schedule (cron,
timezone, active), its default parameters (crypto ``limit``) and resumes a deployment paused
in the Prefect UI when the row is active. A pause made in the UI is not copied back into
the table: the overview shows it as ``drift`` until the next apply.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect.client.orchestration import PrefectClient, get_client

from deployments.control.catalog import FIXED_JOBS, FixedJob, Job
from deployments.control.configs import (
    JobSettings,
    deployment_parameters,
    read_settings,
    validate_change,
    write_settings,
)
from prefect_api import (
    deployment_id,
    read_deployment_or_none,
    set_primary_schedule,
    update_deployment,
)


async def apply_fixed(client: PrefectClient, job: FixedJob, settings: JobSettings,
                      deployment: uuid.UUID | None = None) -> uuid.UUID:
    """Make the job's deployment match its row (registered from code when it is missing)."""
    dep = deployment or await deployment_id(client, job.flow, job.id, tags=list(job.spec.tags),
                                            concurrency_limit=job.concurrency)
    await set_primary_schedule(client, dep, cron=settings.schedule, timezone=settings.timezone,
                               active=settings.active)
    await update_deployment(client, dep, parameters=deployment_parameters(job, settings),
                            paused=False if settings.active else None)
    return dep


async def apply_all(*, register_missing: bool = False) -> list[str]:
    """Apply every fixed job's row; deployments not created yet are reported (or registered)."""
    rows = read_settings()
    lines = []
    async with get_client() as client:
        for job in FIXED_JOBS:
            s = rows[job.id]
            found = await read_deployment_or_none(client, job.deployment)
            if found is None and not register_missing:
                lines.append(f"{job.deployment}: not deployed (prefect deploy), row kept")
                continue
            await apply_fixed(client, job, s, found.id if found else None)
            lines.append(f"{job.deployment}: {s.schedule} ({s.timezone}) {'active' if s.active else 'inactive'}")
    return lines


async def job_config(job: Job) -> dict[str, Any]:
    """The job's configuration as stored (the one source of its schedule)."""
    if isinstance(job, FixedJob):
        return {"job_id": job.id, "family": job.family, "source": job.table, "key": job.key,
                **read_settings([job])[job.id].view()}
    view = await job.kind.view(job)
    return {"job_id": job.id, "family": job.family, "source": "scheduled_jobs", "key": job.name,
            "schedule": view["cron_expression"], "timezone": view["timezone"], "active": view["is_active"],
            "config": view["metadata"]}


async def change_config(job: Job, *, schedule: str | None = None, timezone: str | None = None,
                        active: bool | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(job, FixedJob):
        old = read_settings([job])[job.id]
        new = validate_change(job, old, schedule=schedule, timezone=timezone, active=active, config=config)
        async with get_client() as client:
            await apply_fixed(client, job, new)
        try:
            write_settings(job, new)
        except BaseException:
            async with get_client() as client:
                await apply_fixed(client, job, old)
            raise
        return await job_config(job)
    await job.kind.change(job, schedule, timezone, active, config)
    return await job_config(job)
