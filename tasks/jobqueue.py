"""Execute one claimed application job as a Prefect task run (seed 002)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Protocol

from prefect import task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run, task_run

from core.cron import next_run
from core.db import session_scope
from core.db.types import utcnow
from core.jobqueue import repo
from core.jobqueue.models import Job
from core.jobqueue.registry import get_job_type, parse_job
from core.settings import get_settings
from tasks._common import db_url


class _Progress:
    """Writes progress to the ``jobs`` row and to a Prefect progress artifact.

    The artifact is created on the first report, so jobs that report nothing cost no
    artifact API calls.
    """

    def __init__(self, url: str, job_id: uuid.UUID, label: str) -> None:
        self._url, self._job_id, self._label = url, job_id, label
        self.artifact_id: Any = None

    async def report(self, message: str, percent: int | None = None) -> None:
        with session_scope(self._url) as session:
            repo.report_progress(session, self._job_id, message, percent)
        if percent is None:
            return
        value = float(max(0, min(100, percent)))
        if self.artifact_id is None:
            self.artifact_id = await acreate_progress_artifact(progress=value, description=message)
        else:
            await aupdate_progress_artifact(self.artifact_id, progress=value, description=message)


async def _heartbeat(url: str, job_id: uuid.UUID, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        with session_scope(url) as session:
            repo.heartbeat(session, [job_id])


@task(name="execute-job", task_run_name="{job_type}-{job_id}", cache_policy=NO_CACHE)
async def execute_job(job_id: str, job_type: str) -> str:
    """Validate the claimed job's data, run its handler, mark it Completed or Failed."""
    settings = get_settings()
    url = db_url(settings)
    jid = uuid.UUID(job_id)
    with session_scope(url) as session:
        repo.set_prefect_run(session, jid, flow_run_id=_str(flow_run.get_id()),
                             task_run_id=_str(task_run.get_id()))
        row = session.get(Job, jid)
        data = dict(row.job_data) if row else {}
    try:
        kind = get_job_type(job_type)
        job = parse_job(kind, data)
    except Exception as exc:
        with session_scope(url) as session:
            repo.finish(session, jid, error=str(exc))
        raise
    progress = _Progress(url, jid, f"{job_type} {job_id}")
    beat = asyncio.create_task(_heartbeat(url, jid, settings.jobs_worker.heartbeat_seconds))
    try:
        await kind.handler(job, progress)
    except Exception as exc:
        with session_scope(url) as session:
            repo.finish(session, jid, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        beat.cancel()
    with session_scope(url) as session:
        repo.finish(session, jid)
    if progress.artifact_id is not None:
        await aupdate_progress_artifact(progress.artifact_id, progress=100.0,
                                        description=f"{job_type} completed")
    return job_id


def _str(value: object) -> str | None:
    return str(value) if value else None


class WorkerLoop(Protocol):
    async def serve_session(self) -> int: ...


# The jobs workers of this process by name, registered by the worker itself: the session
# flow takes the name (a flow parameter must be plain data), not the worker object.
ACTIVE_WORKERS: dict[str, WorkerLoop] = {}


def enqueue_scheduled(name: str) -> str | None:
    """Enqueue the next run of scheduled job ``name``; None when it is missing or disabled."""
    now = utcnow()
    with session_scope(db_url()) as session:
        scheduled = repo.get_scheduled(session, name)
        if scheduled is None or not scheduled.is_enabled:
            return None
        job_id = repo.enqueue(session, scheduled.job_type, dict(scheduled.job_data), scheduled.id)
        scheduled.last_run_time = now
        scheduled.next_run_time = next_run(scheduled.cron_expression, scheduled.timezone, now)
    return str(job_id)
