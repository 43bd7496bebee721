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

import asyncio
import uuid
from typing import Any

from prefect.client.orchestration import PrefectClient, get_client
from pydantic import ValidationError

from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.errors import ConfigError, field_errors
from core.jobqueue.registry import UnknownJobType, get_job_type
from deployments.control import brand_admin
from deployments.control.catalog import FIXED_JOBS, FixedJob, Job, ScheduledRowJob
from deployments.control.configs import (
    JobSettings,
    deployment_parameters,
    read_settings,
    validate_change,
    write_settings,
)
from deployments.control.scheduled_jobs import add_or_update_scheduled_job
from tasks._common import db_url
from tasks.prefect_api import (
    deployment_id,
    read_deployment_or_none,
    set_primary_schedule,
    update_deployment,
)


async def apply_fixed(client: PrefectClient, job: FixedJob, settings: JobSettings,
                      deployment: uuid.UUID | None = None) -> uuid.UUID:
    """Make the job's deployment match its row (registered from code when it is missing)."""
    dep = deployment or await deployment_id(client, job.flow, job.id)
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
    view = await brand_admin.get_scheduled_job(job.row_id) if job.family == "brands" else _queue_view(job)
    return {"job_id": job.id, "family": job.family, "source": "scheduled_jobs", "key": job.name,
            "schedule": view["cron_expression"], "timezone": view["timezone"], "active": view["is_active"],
            "config": view["metadata"]}


def _queue_view(job: ScheduledRowJob) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        row = session.get(ScheduledJob, job.row_id)
        if row is None:
            raise ConfigError(f"job_id: {job.id} was deleted")
        return {"cron_expression": row.cron_expression, "timezone": row.timezone, "is_active": row.is_enabled,
                "metadata": dict(row.job_data)}


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
    if job.family == "brands":
        await brand_admin.update_scheduled_job(job.row_id, cron_expression=schedule, timezone=timezone,
                                               is_active=active, metadata=config)
        return await job_config(job)
    return await _change_queue_job(job, schedule, timezone, active, config)


async def _change_queue_job(job: ScheduledRowJob, schedule: str | None, timezone: str | None,
                            active: bool | None, config: dict[str, Any] | None) -> dict[str, Any]:
    current = _queue_view(job)
    try:
        kind = get_job_type(job.job_type)
    except UnknownJobType:
        raise ConfigError(f"config: job type {job.job_type!r} is not registered in this process "
                          "(JOBS_MODULES)") from None
    try:
        model = kind.model.model_validate(current["metadata"] if config is None else config)
    except ValidationError as exc:
        raise ConfigError(field_errors(exc, prefix="config", empty="config")) from None
    try:
        await asyncio.to_thread(add_or_update_scheduled_job, model, schedule or current["cron_expression"],
                                name=job.name, timezone=timezone or current["timezone"],
                                enabled=current["is_active"] if active is None else active)
    except ValueError as exc:  # validate_schedule: "cron_expression: ..." / "timezone: ..."
        raise ConfigError(str(exc).replace("cron_expression:", "schedule:", 1)) from None
    return await job_config(job)
