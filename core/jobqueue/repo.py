"""The ``jobs`` and ``scheduled_jobs`` tables: enqueue, claim, progress, finish, recover."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from core.db.claim import claim_oldest
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.db.upsert import rowcount
from core.jobqueue.models import Job, JobStatus
from core.jobqueue.registry import get_job_type, type_name

NOTIFY_CHANNEL = "jobs_enqueued"


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    job_type: str
    job_data: dict[str, Any]
    attempts: int


def enqueue(session: Session, job_type: str, data: dict[str, Any],
            scheduled_job_id: uuid.UUID | None = None) -> uuid.UUID:
    """Insert a Pending job in the caller's transaction (no commit here).

    On PostgreSQL a NOTIFY is queued too; PostgreSQL delivers it only if the transaction
    commits, so workers wake for committed jobs only.
    """
    job_id = uuid.uuid4()
    session.add(Job(id=job_id, job_type=job_type, job_data=data, status=JobStatus.PENDING.value,
                    created_at=utcnow(), attempts=0, scheduled_job_id=scheduled_job_id))
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :payload)"),
                        {"channel": NOTIFY_CHANNEL, "payload": job_type})
    return job_id


def claim(session: Session, *, job_type: str, limit: int, worker: str, type_limit: int) -> list[ClaimedJob]:
    """Pending -> Running for up to ``limit`` oldest jobs of one type; disjoint across workers.

    ``type_limit`` caps the jobs of this type Running at once across ALL workers: claims of
    one type are serialised (a transaction-scoped advisory lock on PostgreSQL; SQLite
    serialises writers anyway), so counting Running rows and claiming is exact.
    """
    if limit <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"jobs:{job_type}"))))
    running = session.execute(select(func.count()).select_from(Job).where(
        Job.status == JobStatus.RUNNING.value, Job.job_type == job_type)).scalar_one()
    limit = min(limit, type_limit - running)
    if limit <= 0:
        return []
    now = utcnow()
    rows = claim_oldest(
        session, Job, where=[Job.status == JobStatus.PENDING.value, Job.job_type == job_type], limit=limit,
        values={"status": JobStatus.RUNNING.value, "started_at": now, "heartbeat_at": now,
                "claimed_by": worker, "attempts": Job.attempts + 1, "completed_at": None,
                "error_message": None},
        returning=[Job.id, Job.job_type, Job.job_data, Job.attempts],
    )
    return [ClaimedJob(r.id, r.job_type, r.job_data, r.attempts) for r in rows]


def pending_types(session: Session) -> list[str]:
    return list(session.execute(
        select(Job.job_type).where(Job.status == JobStatus.PENDING.value).distinct()).scalars())


def set_prefect_run(session: Session, job_id: uuid.UUID, *, flow_run_id: str | None,
                    task_run_id: str | None) -> None:
    """Remember which Prefect flow run (worker session) and task run execute the job."""
    session.execute(update(Job).where(Job.id == job_id)
                    .values(flow_run_id=flow_run_id, task_run_id=task_run_id, heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False))


def heartbeat(session: Session, job_ids: list[uuid.UUID]) -> None:
    if job_ids:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.status == JobStatus.RUNNING.value)
                        .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))


def report_progress(session: Session, job_id: uuid.UUID, message: str, percent: int | None) -> None:
    values: dict[str, Any] = {"progress_message": message[:2000], "heartbeat_at": utcnow()}
    if percent is not None:
        values["progress_percent"] = max(0, min(100, int(percent)))
    session.execute(update(Job).where(Job.id == job_id).values(**values)
                    .execution_options(synchronize_session=False))


def finish(session: Session, job_id: uuid.UUID, *, error: str | None = None) -> None:
    """Running -> Completed, or -> Failed with ``error``."""
    values: dict[str, Any] = {"completed_at": utcnow(), "heartbeat_at": None}
    if error is None:
        values |= {"status": JobStatus.COMPLETED.value, "error_message": None}
    else:
        values |= {"status": JobStatus.FAILED.value, "error_message": error[:4000]}
    session.execute(update(Job).where(Job.id == job_id).values(**values)
                    .execution_options(synchronize_session=False))


def requeue_or_fail(session: Session, job_ids: list[uuid.UUID], *, reason: str, max_attempts: int) -> tuple[int, int]:
    """Give Running jobs back to Pending, or fail those that used up ``max_attempts``."""
    if not job_ids:
        return 0, 0
    base = update(Job).where(Job.id.in_(job_ids), Job.status == JobStatus.RUNNING.value)
    requeued = rowcount(session.execute(
        base.where(Job.attempts < max_attempts)
        .values(status=JobStatus.PENDING.value, claimed_by=None, heartbeat_at=None, flow_run_id=None,
                task_run_id=None,
                error_message=f"re-queued: {reason}")
        .execution_options(synchronize_session=False)))
    failed = rowcount(session.execute(
        base.where(Job.attempts >= max_attempts)
        .values(status=JobStatus.FAILED.value, completed_at=utcnow(), heartbeat_at=None,
                error_message=f"{reason}; gave up after {max_attempts} attempts")
        .execution_options(synchronize_session=False)))
    return requeued, failed


def stale_running(session: Session, *, threshold: timedelta, now: datetime | None = None) -> list[uuid.UUID]:
    """Running jobs whose heartbeat is older than ``threshold``: nobody is running them."""
    cutoff = (now or utcnow()) - threshold
    return list(session.execute(
        select(Job.id).where(Job.status == JobStatus.RUNNING.value, Job.heartbeat_at < cutoff)
        .with_for_update(skip_locked=True)).scalars())


def running_of_worker(session: Session, worker: str) -> list[uuid.UUID]:
    return list(session.execute(
        select(Job.id).where(Job.status == JobStatus.RUNNING.value, Job.claimed_by == worker)).scalars())


def running_with_task_runs(session: Session) -> list[tuple[uuid.UUID, str]]:
    return [(r.id, r.task_run_id) for r in session.execute(
        select(Job.id, Job.task_run_id).where(Job.status == JobStatus.RUNNING.value,
                                              Job.task_run_id.is_not(None)))]


def get_scheduled(session: Session, name: str) -> ScheduledJob | None:
    return session.execute(select(ScheduledJob).where(ScheduledJob.name == name)).scalar_one_or_none()


def start_job(session: Session, job: BaseModel) -> uuid.UUID:
    """Enqueue ``job`` inside the caller's transaction: it exists (and runs) only if they commit."""
    job_type = get_job_type(type_name(job))
    return enqueue(session, job_type.name, job.model_dump(mode="json"))
