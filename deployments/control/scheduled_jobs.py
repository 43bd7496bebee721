"""Scheduled jobs of the application job queue (seed 002): ``scheduled_jobs`` rows kept in
step with the schedules of the ``enqueue-scheduled-job`` deployment.

Each function writes the row first, then applies it to Prefect through ``tasks.prefect_api``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from prefect.client.orchestration import get_client
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import BaseModel

from core.cron import next_run, validate_schedule
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.jobqueue import repo
from core.jobqueue.registry import get_job_type, type_name
from flows.jobqueue import SCHEDULE_FLOW, enqueue_scheduled_job
from tasks._common import db_url
from tasks.prefect_api import apply_schedule, deployment_id, remove_schedule


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

    ``name`` defaults to the job type, so calling it again for the same type updates it.
    """
    kind = get_job_type(type_name(job))
    cron = validate_schedule(cron, timezone)
    name = name or kind.name
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
