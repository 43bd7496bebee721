"""Scheduled jobs of the application job queue (seed 002): ``scheduled_jobs`` rows kept in
step with the schedules of the ``enqueue-scheduled-job`` deployment.

Each function writes the row first, then applies it to Prefect through ``prefect_api``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect.client.orchestration import get_client
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cron import next_run, validate_schedule
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.errors import ConfigError, field_errors
from core.jobqueue import repo
from core.jobqueue.models import Job as QueueJob
from core.jobqueue.registry import UnknownJobType, aliases, get_job_type, type_name
from deployments.control.rows import History, RowKind, ScheduledRowJob, Triggered, duration_ms, iso
from flows.jobqueue import SCHEDULE_FLOW, enqueue_scheduled_job
from prefect_api import (
    apply_schedule,
    deployment_id,
    flow_run_url,
    remove_schedule,
    trigger_deployment,
)
from tasks._common import db_url


@dataclass(frozen=True)
class ScheduledJobInfo:
    name: str
    job_type: str
    cron_expression: str
    timezone: str
    next_run_time: datetime
    is_enabled: bool


def _schedule_slug(name: str) -> str:
    return f"scheduled-job-{name}"


async def _sync_schedule(info: ScheduledJobInfo | None, name: str) -> None:
    """Make the deployment's schedule for ``name`` match ``info`` (None: remove it)."""
    async with get_client() as client:
        deployment = await deployment_id(client, enqueue_scheduled_job, SCHEDULE_FLOW)
        if info is None:
            await remove_schedule(client, deployment, _schedule_slug(name))
        else:
            await apply_schedule(client, deployment, _schedule_slug(name), cron=info.cron_expression,
                                 timezone=info.timezone, active=info.is_enabled, parameters={"name": name})


def _info(row: ScheduledJob) -> ScheduledJobInfo:
    return ScheduledJobInfo(row.name, row.job_type, row.cron_expression, row.timezone,
                            row.next_run_time, row.is_enabled)


def add_or_update_scheduled_job(
    job: BaseModel, cron: str, *, name: str | None = None, timezone: str = "UTC", enabled: bool = True
) -> ScheduledJobInfo:
    """Create or change a recurring job; ``scheduled_jobs`` and the Prefect schedule agree.

    ``name`` defaults to the job type's class name (its full name when two types share the
    class name), so calling it again for the same type updates it.
    """
    kind = get_job_type(type_name(job))
    cron = validate_schedule(cron, timezone)
    # Named by the class name while that names one type (scheduled-job-SendEmailJob), else in full.
    name = name or (kind.short if aliases().get(kind.short) == kind.name else kind.name)
    now = utcnow()
    with session_scope(db_url()) as session:
        row = repo.get_scheduled(session, name)
        if row is None:
            row = ScheduledJob(id=uuid.uuid4(), name=name, created_at=now)
            session.add(row)
        row.job_type, row.job_data = kind.name, job.model_dump(mode="json")
        row.cron_expression, row.timezone, row.is_enabled = cron, timezone, enabled
        row.next_run_time, row.updated_at = next_run(cron, timezone, now), now
        session.flush()
        info = _info(row)
    run_coro_as_sync(_sync_schedule(info, name))
    return info


def remove_scheduled_job(name: str) -> bool:
    """Delete a scheduled job and its Prefect schedule; False if there was none."""
    with session_scope(db_url()) as session:
        row = repo.get_scheduled(session, name)
        if row is not None:
            session.delete(row)
    run_coro_as_sync(_sync_schedule(None, name))
    return row is not None


async def sync_all_schedules() -> int:
    """Re-apply every ``scheduled_jobs`` row to Prefect (the worker's periodic check)."""
    with session_scope(db_url()) as session:
        infos = [_info(r) for r in session.query(ScheduledJob).filter(ScheduledJob.brand_id.is_(None)).all()]
    for info in infos:
        await _sync_schedule(info, info.name)
    return len(infos)


# --- the job-queue job as an operable job (deployments.control.rows) --------------------

def _queue_lookup(session: Session, key: str) -> ScheduledJob | None:
    return session.execute(select(ScheduledJob).where(
        ScheduledJob.name == key, ScheduledJob.brand_id.is_(None))).scalar_one_or_none()


async def _queue_view(job: ScheduledRowJob) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        row = session.get(ScheduledJob, job.row_id)
        if row is None:
            raise ConfigError(f"job_id: {job.id} was deleted")
        return {"cron_expression": row.cron_expression, "timezone": row.timezone, "is_active": row.is_enabled,
                "metadata": dict(row.job_data)}


async def _queue_change(job: ScheduledRowJob, schedule: str | None, timezone: str | None, active: bool | None,
                        config: dict[str, Any] | None) -> None:
    current = await _queue_view(job)
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


async def _queue_trigger(job: ScheduledRowJob) -> Triggered:
    async with get_client() as client:
        await deployment_id(client, enqueue_scheduled_job, SCHEDULE_FLOW)
    parameters = {"name": job.name}
    flow_run = await trigger_deployment(QUEUE_DEPLOYMENT, parameters, tags=["jobpipes", "manual"])
    return Triggered(str(flow_run.id), flow_run.state_name or "Scheduled", parameters, {})


def queue_run_view(job: QueueJob) -> dict[str, Any]:
    """A queue job in the executions' shape of every job."""
    return {"id": str(job.id), "status": job.status, "started_at": iso(job.started_at or job.created_at),
            "finished_at": iso(job.completed_at), "duration_ms": duration_ms(job.started_at, job.completed_at),
            "counts": None, "api_calls": None, "error": job.error_message,
            "metrics": {"progress_message": job.progress_message, "progress_percent": job.progress_percent,
                        "attempts": job.attempts},
            "flow_run_id": job.flow_run_id, "flow_run_url": flow_run_url(job.flow_run_id) if job.flow_run_id else None}


QUEUE_DEPLOYMENT = f"{SCHEDULE_FLOW}/{SCHEDULE_FLOW}"
QUEUE_ROWS = RowKind(
    family="jobqueue", prefix="scheduled-job-", deployment=QUEUE_DEPLOYMENT, flow=enqueue_scheduled_job,
    owns=lambda row: row.brand_id is None, key=lambda row: row.name, lookup=_queue_lookup,
    view=_queue_view, change=_queue_change, trigger=_queue_trigger,
    history=lambda job: History(QueueJob, QueueJob.scheduled_job_id == job.row_id, QueueJob.created_at,
                                queue_run_view))
