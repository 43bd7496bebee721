"""The job queue's jobs (seed 002) as operators see them: list, show, cancel, retry.

One home for the operations API (``/api/v1/queue/jobs``) and ``jobpipes queue``, so both
always agree. A cancel of a Running job is a request: the job's worker sees it on its next
heartbeat (at once on PostgreSQL), its handler's ``progress.cancellation`` is set, and the
attempt ends ``Cancelled`` (``core.jobqueue.cancellation``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from core.db import session_scope
from core.errors import ConfigError
from core.jobqueue import repo
from core.jobqueue.models import Job, JobStatus
from deployments.control.catalog import UnknownJob
from deployments.control.rows import duration_ms, iso
from deployments.control.trigger import JobConflict
from prefect_api import flow_run_url
from tasks._common import db_url

STATUSES = tuple(s.value for s in JobStatus)


class UnknownQueueJob(UnknownJob):
    """No job-queue job with this id (a 404)."""


def view(job: Job, *, detail: bool = False) -> dict[str, Any]:
    """A job as the API answers and the CLI prints it; ``detail`` adds its data."""
    shown: dict[str, Any] = {
        "id": str(job.id), "job_type": job.job_type, "status": job.status, "attempts": job.attempts,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at), "completed_at": iso(job.completed_at),
        "duration_ms": duration_ms(job.started_at, job.completed_at),
        "progress_message": job.progress_message, "progress_percent": job.progress_percent,
        "error": job.error_message, "cancel_requested_at": iso(job.cancel_requested_at),
        "claimed_by": job.claimed_by, "flow_run_url": flow_run_url(job.flow_run_id) if job.flow_run_id else None}
    if detail:
        shown |= {"job_data": job.job_data, "flow_run_id": job.flow_run_id, "task_run_id": job.task_run_id,
                  "scheduled_job_id": str(job.scheduled_job_id) if job.scheduled_job_id else None}
    return shown


def _id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        raise UnknownQueueJob(f"job_id: {job_id!r} is not a UUID") from None


def _status(status: str | None) -> str | None:
    if status is None:
        return None
    for known in STATUSES:
        if status.lower() == known.lower():
            return known
    raise ConfigError(f"status: {status!r} is not one of {', '.join(STATUSES)}")


def list_jobs(*, status: str | None = None, job_type: str | None = None, since: datetime | None = None,
              limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Jobs newest first: ``{"items", "total", "limit", "offset"}``."""
    with session_scope(db_url()) as session:
        rows, total = repo.list_jobs(session, status=_status(status), job_type=_type(session, job_type),
                                     since=since, limit=limit, offset=offset)
        return {"items": [view(j) for j in rows], "total": total, "limit": limit, "offset": offset}


def _type(session: Any, job_type: str | None) -> str | None:
    """A job type filter by full name, or by the short name of the types stored."""
    if job_type is None or "." in job_type:
        return job_type
    stored = [t for t in repo.stored_types(session) if t.rsplit(".", 1)[-1] == job_type]
    return stored[0] if len(stored) == 1 else job_type


def get(job_id: str) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        job = repo.get_job(session, _id(job_id))
        if job is None:
            raise UnknownQueueJob(f"job_id: no job-queue job {job_id}")
        return view(job, detail=True)


def cancel(job_id: str) -> dict[str, Any]:
    """Cancel a Pending job at once, or ask a Running one to stop (its ``status`` stays
    Running, with ``cancel_requested_at``, until the handler stopped); asking again is
    harmless; 409 when it already ended otherwise."""
    with session_scope(db_url()) as session:
        status = repo.request_cancel(session, _id(job_id))
    if status is None:
        raise UnknownQueueJob(f"job_id: no job-queue job {job_id}")
    job = get(job_id)
    if status not in (JobStatus.CANCELLED.value, JobStatus.RUNNING.value):
        raise JobConflict(f"job {job_id} already ended {status}; there is nothing to cancel")
    return job


def retry(job_id: str) -> dict[str, Any]:
    """A Failed or Cancelled job back to Pending; 409 for any other status."""
    with session_scope(db_url()) as session:
        done = repo.retry(session, _id(job_id))
    if done is None:
        raise UnknownQueueJob(f"job_id: no job-queue job {job_id}")
    status, retried = done
    if not retried:
        raise JobConflict(f"job {job_id} is {status}; only Failed or Cancelled jobs can be retried")
    return get(job_id)
