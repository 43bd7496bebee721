"""The ``jobs`` and ``scheduled_jobs`` tables: enqueue, claim, progress, finish, recover."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from core.db.claim import claim_oldest
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.db.upsert import rowcount
from core.jobqueue.models import Job, JobStatus
from core.jobqueue.registry import get_job_type, type_name

NOTIFY_CHANNEL = "jobs_enqueued"
CANCEL_PREFIX = "cancel:"  # a NOTIFY payload on NOTIFY_CHANNEL: a Running job's cancel was requested


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    job_type: str
    job_data: dict[str, Any]
    attempts: int


_PG_ENQUEUE = text(
    "WITH job AS (INSERT INTO jobs (id, job_type, job_data, status, created_at, attempts, scheduled_job_id) "
    "VALUES (:id, :job_type, CAST(:job_data AS jsonb), 'Pending', :created_at, 0, :scheduled_job_id) RETURNING id) "
    f"SELECT pg_notify('{NOTIFY_CHANNEL}', :job_type) FROM job")


def enqueue(session: Session, job_type: str, data: dict[str, Any],
            scheduled_job_id: uuid.UUID | None = None) -> uuid.UUID:
    """Insert a Pending job in the caller's transaction (no commit here).

    On PostgreSQL the same statement queues a NOTIFY (payload: the job type); PostgreSQL
    delivers it only if the transaction commits, so workers wake for committed jobs only.
    """
    job_id = uuid.uuid4()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_ENQUEUE, {"id": job_id, "job_type": job_type, "job_data": json.dumps(data),
                                      "created_at": utcnow(), "scheduled_job_id": scheduled_job_id})
        return job_id
    session.add(Job(id=job_id, job_type=job_type, job_data=data, status=JobStatus.PENDING.value,
                    created_at=utcnow(), attempts=0, scheduled_job_id=scheduled_job_id))
    session.flush()
    return job_id


def claim(session: Session, *, job_type: str, limit: int, worker: str, type_limit: int,
          flow_run_id: str | None = None) -> list[ClaimedJob]:
    """Pending -> Running for up to ``limit`` oldest jobs of one type, in ONE UPDATE ...
    RETURNING; disjoint across workers. ``flow_run_id`` (the worker's session flow run) is
    written with the claim, so liveness recovery can ask Prefect about it from then on.

    ``type_limit`` caps the jobs of this type Running at once across ALL workers: claims of
    one type are serialised (a transaction-scoped advisory lock on PostgreSQL; SQLite
    serialises writers anyway), so counting Running rows and claiming is exact.
    """
    if limit <= 0:
        return []
    # A deferred job (``not_before``: its handler met a provider's "later") waits until then.
    if session.get_bind().dialect.name == "postgresql":
        return _pg_claim(session, job_type=job_type, limit=limit, worker=worker, type_limit=type_limit,
                         flow_run_id=flow_run_id)
    running = session.execute(select(func.count()).select_from(Job).where(
        Job.status == JobStatus.RUNNING.value, Job.job_type == job_type)).scalar_one()
    limit = min(limit, type_limit - running)
    if limit <= 0:
        return []
    now = utcnow()
    rows = claim_oldest(
        session, Job, where=[Job.status == JobStatus.PENDING.value, Job.job_type == job_type, _due(now)],
        limit=limit,
        values={"status": JobStatus.RUNNING.value, "started_at": now, "heartbeat_at": now,
                "claimed_by": worker, "attempts": Job.attempts + 1, "completed_at": None,
                "error_message": None, "flow_run_id": flow_run_id, "task_run_id": None, "not_before": None},
        returning=[Job.id, Job.job_type, Job.job_data, Job.attempts],
    )
    return [ClaimedJob(r.id, r.job_type, r.job_data, r.attempts) for r in rows]


_PG_LOCK = ("SELECT pg_advisory_xact_lock(hashtext(%(key)s)), "
            "set_config('synchronous_commit', 'off', true)")
_PG_CLAIM = """
WITH running AS (SELECT count(*) AS n FROM jobs WHERE status = 'Running' AND job_type = %(job_type)s),
claimable AS (
  SELECT id FROM jobs WHERE status = 'Pending' AND job_type = %(job_type)s
    AND (not_before IS NULL OR not_before <= %(now)s) ORDER BY created_at, id
  LIMIT GREATEST(0, LEAST(%(limit)s, %(type_limit)s - (SELECT n FROM running))) FOR UPDATE SKIP LOCKED)
UPDATE jobs SET status = 'Running', started_at = %(now)s, heartbeat_at = %(now)s, claimed_by = %(worker)s,
  attempts = jobs.attempts + 1, completed_at = NULL, error_message = NULL, flow_run_id = %(flow_run_id)s,
  task_run_id = NULL, not_before = NULL
FROM claimable WHERE jobs.id = claimable.id AND jobs.status = 'Pending'
RETURNING jobs.id, jobs.job_type, jobs.job_data, jobs.attempts, jobs.created_at"""


def _pg_claim(session: Session, *, job_type: str, limit: int, worker: str, type_limit: int,
              flow_run_id: str | None) -> list[ClaimedJob]:
    """The claim on PostgreSQL in two round trips of plain SQL (the claim is on every job's
    path to its handler, and building ORM statements cost more than running them).

    First the type's claim lock, with no WAL flush wait at commit (a claim lost to a
    PostgreSQL crash is a job back to Pending, run again as after a worker crash; an
    outcome's commit flushes the WAL, the claim before it included). Then, under the lock,
    count the type's Running jobs and claim at most the rest of its limit, in one statement."""
    conn = session.connection()
    conn.exec_driver_sql(_PG_LOCK, {"key": f"jobs:{job_type}"})
    rows = sorted(conn.exec_driver_sql(_PG_CLAIM, {
        "job_type": job_type, "limit": limit, "type_limit": type_limit, "now": utcnow(), "worker": worker,
        "flow_run_id": flow_run_id}).all(), key=lambda r: (r.created_at, r.id))
    return [ClaimedJob(r.id, r.job_type, r.job_data, r.attempts) for r in rows]


def qualify_job_types(session: Session, full_names: dict[str, str]) -> int:
    """Rewrite short job type names (``SendEmailJob``, as plain-SQL writers and rows from before
    full names write them) to their full name in Pending jobs and scheduled jobs; returns the
    rows changed. Only unambiguous short names are given (``registry.aliases``)."""
    changed = 0
    for short, full in full_names.items():
        changed += rowcount(session.execute(
            update(Job).where(Job.job_type == short, Job.status == JobStatus.PENDING.value)
            .values(job_type=full).execution_options(synchronize_session=False)))
        changed += rowcount(session.execute(
            update(ScheduledJob).where(ScheduledJob.job_type == short)
            .values(job_type=full).execution_options(synchronize_session=False)))
    return changed


def _due(now: datetime) -> Any:
    return or_(Job.not_before.is_(None), Job.not_before <= now)


def pending_types(session: Session) -> list[str]:
    """The types with Pending jobs that may be claimed now (deferred ones wait)."""
    return list(session.execute(
        select(Job.job_type).where(Job.status == JobStatus.PENDING.value, _due(utcnow())).distinct()).scalars())


def set_prefect_run(session: Session, job_id: uuid.UUID, attempt: int, *, flow_run_id: str | None,
                    task_run_id: str | None) -> bool:
    """Remember which Prefect flow run (worker session) and task run execute this attempt."""
    return _owned(session, job_id, attempt, flow_run_id=flow_run_id, task_run_id=task_run_id,
                  heartbeat_at=utcnow()) > 0


def heartbeat(session: Session, job_id: uuid.UUID, attempt: int) -> bool:
    """Refresh the attempt's heartbeat; False when the job is no longer this attempt's."""
    return _owned(session, job_id, attempt, heartbeat_at=utcnow()) > 0


def report_progress(session: Session, job_id: uuid.UUID, attempt: int, message: str,
                    percent: int | None) -> None:
    values: dict[str, Any] = {"progress_message": message[:2000], "heartbeat_at": utcnow()}
    if percent is not None:
        values["progress_percent"] = max(0, min(100, int(percent)))
    _owned(session, job_id, attempt, **values)


def finish(session: Session, job_id: uuid.UUID, attempt: int, *, error: str | None = None) -> bool:
    """Running -> Completed, or -> Failed with ``error``; False (nothing written) when the
    attempt lost the job to orphan recovery, so a job never completes twice."""
    values: dict[str, Any] = {"completed_at": utcnow(), "heartbeat_at": None}
    if error is None:
        values |= {"status": JobStatus.COMPLETED.value, "error_message": None}
    else:
        values |= {"status": JobStatus.FAILED.value, "error_message": error[:4000]}
    return _owned(session, job_id, attempt, **values) > 0


def _owned(session: Session, job_id: uuid.UUID, attempt: int, **values: Any) -> int:
    """UPDATE the job only while it is Running under ``attempt`` (the fencing token)."""
    return rowcount(session.execute(
        update(Job).where(Job.id == job_id, Job.attempts == attempt, Job.status == JobStatus.RUNNING.value)
        .values(**values).execution_options(synchronize_session=False)))


JobAttempt = tuple[uuid.UUID, int]
"""(job id, attempts) as observed: recovery acts only if the job is still that attempt."""


def requeue_or_fail(session: Session, jobs: list[JobAttempt], *, reason: str, max_attempts: int) -> tuple[int, int]:
    """Give Running jobs back to Pending, or fail those that used up ``max_attempts``
    (counted as failed: jobs whose cancel was requested end Cancelled instead).

    Only rows still Running under the observed attempt change: a job that finished or was
    re-claimed since it was looked at is left alone."""
    if not jobs:
        return 0, 0
    same = or_(*(and_(Job.id == job_id, Job.attempts == attempt) for job_id, attempt in jobs))
    base = update(Job).where(same, Job.status == JobStatus.RUNNING.value)
    cancelled = rowcount(session.execute(  # its cancel was requested: it does not run again
        base.where(Job.cancel_requested_at.is_not(None))
        .values(status=JobStatus.CANCELLED.value, completed_at=utcnow(), heartbeat_at=None,
                error_message=f"cancelled by request; the attempt ended without a result ({reason})")
        .execution_options(synchronize_session=False)))
    requeued = rowcount(session.execute(
        base.where(Job.attempts < max_attempts)
        .values(status=JobStatus.PENDING.value, claimed_by=None, heartbeat_at=None, flow_run_id=None,
                task_run_id=None, error_message=f"re-queued: {reason}")
        .execution_options(synchronize_session=False)))
    failed = rowcount(session.execute(
        base.where(Job.attempts >= max_attempts)
        .values(status=JobStatus.FAILED.value, completed_at=utcnow(), heartbeat_at=None,
                error_message=f"{reason}; gave up after {max_attempts} attempts")
        .execution_options(synchronize_session=False)))
    return requeued, failed + cancelled


def stale_running(session: Session, *, stale_after: timedelta, now: datetime | None = None) -> list[JobAttempt]:
    """Running jobs with no sign of life (heartbeat, else start) for ``stale_after``.

    Locked with SKIP LOCKED, so two workers checking at once do not both take a row."""
    cutoff = (now or utcnow()) - stale_after
    alive_at = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
    return [(r.id, r.attempts) for r in session.execute(
        select(Job.id, Job.attempts).where(Job.status == JobStatus.RUNNING.value, alive_at < cutoff)
        .with_for_update(skip_locked=True))]


@dataclass(frozen=True)
class RunningJob:
    id: uuid.UUID
    attempts: int
    flow_run_id: str | None
    task_run_id: str | None


def running_with_prefect_runs(session: Session) -> list[RunningJob]:
    """Running jobs whose Prefect flow run (and task run) are known."""
    return [RunningJob(r.id, r.attempts, r.flow_run_id, r.task_run_id) for r in session.execute(
        select(Job.id, Job.attempts, Job.flow_run_id, Job.task_run_id)
        .where(Job.status == JobStatus.RUNNING.value, Job.flow_run_id.is_not(None)))]


def get_scheduled(session: Session, name: str) -> ScheduledJob | None:
    return session.execute(select(ScheduledJob).where(ScheduledJob.name == name)).scalar_one_or_none()


def start_job(session: Session, job: BaseModel) -> uuid.UUID:
    """Enqueue ``job`` inside the caller's transaction: it exists (and runs) only if they commit."""
    job_type = get_job_type(type_name(job))
    return enqueue(session, job_type.name, job.model_dump(mode="json"))


# --- operating on jobs (the API's and ``jobpipes queue``'s commands) ---------------------
RETRYABLE = frozenset({JobStatus.FAILED.value, JobStatus.CANCELLED.value})


def list_jobs(session: Session, *, status: str | None = None, job_type: str | None = None,
              since: datetime | None = None, limit: int = 50, offset: int = 0) -> tuple[list[Job], int]:
    """Jobs newest first, filtered; and how many match in all (for paging)."""
    where = []
    if status is not None:
        where.append(Job.status == status)
    if job_type is not None:
        where.append(Job.job_type == job_type)
    if since is not None:
        where.append(Job.created_at >= since)
    total = session.execute(select(func.count()).select_from(Job).where(*where)).scalar_one()
    rows = session.execute(select(Job).where(*where).order_by(Job.created_at.desc(), Job.id)
                           .limit(limit).offset(offset)).scalars().all()
    return list(rows), int(total)


def get_job(session: Session, job_id: uuid.UUID) -> Job | None:
    return session.get(Job, job_id)


def request_cancel(session: Session, job_id: uuid.UUID) -> str | None:
    """Cancel a job: a Pending one ends Cancelled at once; a Running one gets
    ``cancel_requested_at`` (its worker's next heartbeat tells the handler, and the
    attempt ends Cancelled). Returns the job's status after the request (Running while its
    handler stops), or None when there is no such job. A job already final is left as it is."""
    now = utcnow()
    done = rowcount(session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.PENDING.value)
        .values(status=JobStatus.CANCELLED.value, completed_at=now, cancel_requested_at=now,
                error_message="cancelled by request before it started")
        .execution_options(synchronize_session=False)))
    if not done and rowcount(session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING.value,
                              Job.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now).execution_options(synchronize_session=False))):
        _notify(session, f"{CANCEL_PREFIX}{job_id}")  # its worker heartbeats (and sees it) at once
    status = session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
    return None if status is None else str(status)


def retry(session: Session, job_id: uuid.UUID) -> tuple[str, bool] | None:
    """A Failed or Cancelled job back to Pending (attempts start again): (its status before,
    whether it went back to Pending), or None when there is no such job. Other statuses are
    left alone."""
    job = session.execute(select(Job.job_type, Job.status).where(Job.id == job_id)).one_or_none()
    if job is None:
        return None
    if job.status in RETRYABLE and rowcount(session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(RETRYABLE))
            .values(status=JobStatus.PENDING.value, attempts=0, started_at=None, completed_at=None,
                    cancel_requested_at=None, claimed_by=None, heartbeat_at=None, flow_run_id=None,
                    task_run_id=None, progress_message=None, progress_percent=None, not_before=None,
                    error_message=f"retried by request after: {job.status}")
            .execution_options(synchronize_session=False))):
        _notify(session, job.job_type)  # workers claim it at once
        return str(job.status), True
    return str(job.status), False


def stored_types(session: Session) -> list[str]:
    """Every job type that has jobs."""
    return list(session.execute(select(Job.job_type).distinct()).scalars())


def _notify(session: Session, payload: str) -> None:
    """Queue a NOTIFY on ``NOTIFY_CHANNEL`` (PostgreSQL; delivered when the caller commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": NOTIFY_CHANNEL, "payload": payload})
