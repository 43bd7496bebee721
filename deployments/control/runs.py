"""Executions of a job, one shape for every family.

Fixed jobs: ``job_execution_history`` rows (``job_name``). Brand jobs: ``job_runs`` of the
scheduled job. Job-queue jobs: ``jobs`` rows enqueued by the scheduled job. A flow run that
crashed writes no history row itself: ``record_crashed`` adds one with status ``CRASHED``
(from Prefect's CRASHED runs of the job's deployment), so crashes count and show like any run.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from core.brands.models import JobRun
from core.db import session_scope
from core.db.types import utcnow
from core.errors import ConfigError
from core.jobqueue.models import Job as QueueJob
from core.runs.models import JobExecutionHistory, RunStatus
from core.runs.result import JobMetrics, JobResult
from deployments.control.catalog import FIXED_JOBS, FixedJob, Job
from tasks._common import db_url
from tasks.prefect_api import crashed_runs, flow_run_url, read_deployment_or_none

CRASHED = RunStatus.CRASHED.value
HISTORY_STATUSES = [s.value for s in RunStatus]
FAILURES = {RunStatus.FAILED.value, CRASHED, "failed", "Failed"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def history_view(row: JobExecutionHistory) -> dict[str, Any]:
    return {"id": str(row.id), "status": row.status, "started_at": _iso(row.started_at),
            "finished_at": _iso(row.finished_at), "duration_ms": row.duration_ms,
            "counts": {"processed": row.total_processed, "successful": row.successful_count,
                       "failed": row.failed_count, "created": row.items_created, "updated": row.items_updated,
                       "skipped": row.items_skipped},
            "api_calls": row.api_calls_made, "quota_remaining": row.quota_remaining, "error": row.error_summary,
            "metrics": row.metrics, "flow_run_id": row.flow_run_id,
            "flow_run_url": flow_run_url(row.flow_run_id) if row.flow_run_id else None}


def _duration(start: datetime | None, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def brand_run_view(run: JobRun) -> dict[str, Any]:
    return {"id": str(run.id), "status": run.status, "started_at": _iso(run.started_at or run.created_at),
            "finished_at": _iso(run.finished_at), "duration_ms": _duration(run.started_at, run.finished_at),
            "counts": None, "api_calls": None, "error": run.error_message, "metrics": run.metrics,
            "flow_run_id": run.flow_run_id, "flow_run_url": flow_run_url(run.flow_run_id) if run.flow_run_id else None}


def queue_run_view(job: QueueJob) -> dict[str, Any]:
    return {"id": str(job.id), "status": job.status, "started_at": _iso(job.started_at or job.created_at),
            "finished_at": _iso(job.completed_at), "duration_ms": _duration(job.started_at, job.completed_at),
            "counts": None, "api_calls": None, "error": job.error_message,
            "metrics": {"progress_message": job.progress_message, "progress_percent": job.progress_percent,
                        "attempts": job.attempts},
            "flow_run_id": job.flow_run_id, "flow_run_url": flow_run_url(job.flow_run_id) if job.flow_run_id else None}


def _source(job: Job) -> tuple[Any, Any, Any, Any]:
    """(model, where-clause, time column, view) of the job's executions."""
    if isinstance(job, FixedJob):
        return (JobExecutionHistory, JobExecutionHistory.job_name == job.history_name,
                JobExecutionHistory.started_at, history_view)
    if job.family == "brands":
        return JobRun, JobRun.scheduled_job_id == job.row_id, JobRun.created_at, brand_run_view
    return QueueJob, QueueJob.scheduled_job_id == job.row_id, QueueJob.created_at, queue_run_view


def list_executions(job: Job, *, status: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    model, where, column, view = _source(job)
    if status is not None and isinstance(job, FixedJob) and status not in HISTORY_STATUSES:
        raise ConfigError(f"status: unknown status {status!r}; known: {', '.join(HISTORY_STATUSES)}")
    query = select(model).where(where)
    if status is not None:
        query = query.where(model.status == status)
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    with session_scope(db_url()) as session:
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = session.execute(query.order_by(column.desc()).limit(limit).offset(offset)).scalars()
        items = [view(r) for r in rows]
    return {"job_id": job.id, "total": total, "limit": limit, "offset": offset, "items": items}


def summaries(jobs: list[Job], now: datetime) -> dict[str, dict[str, Any]]:
    """job id -> last run, runs and failures in the last 24 h (one query per source)."""
    out: dict[str, dict[str, Any]] = {}
    day = now - timedelta(hours=24)
    with session_scope(db_url()) as session:
        for job in jobs:
            model, where, column, view = _source(job)
            last = session.execute(select(model).where(where).order_by(column.desc()).limit(1)).scalar_one_or_none()
            statuses = [s for (s,) in session.execute(select(model.status).where(where, column >= day))]
            out[job.id] = {"last_run": view(last) if last is not None else None, "runs_24h": len(statuses),
                           "failures_24h": sum(s in FAILURES for s in statuses),
                           "rate_limited_24h": sum(s == RunStatus.RATE_LIMITED for s in statuses),
                           "crashed_24h": sum(s == CRASHED for s in statuses)}
    return out


async def fixed_deployments() -> dict[uuid.UUID, FixedJob]:
    """Deployment id -> fixed job, for the fixed jobs deployed in Prefect (read concurrently)."""
    async with get_client() as client:
        found = await asyncio.gather(*(read_deployment_or_none(client, job.deployment) for job in FIXED_JOBS))
    return {dep.id: job for dep, job in zip(found, FIXED_JOBS, strict=True) if dep is not None}


async def record_crashed(by_deployment: dict[uuid.UUID, FixedJob] | None = None, days: int = 7) -> int:
    """One CRASHED history row per crashed flow run of a fixed job that has none yet."""
    if by_deployment is None:
        by_deployment = await fixed_deployments()
    async with get_client() as client:
        runs = await crashed_runs(client, list(by_deployment), utcnow() - timedelta(days=days))
    if not runs:
        return 0
    added = 0
    with session_scope(db_url()) as session:
        known = set(session.execute(select(JobExecutionHistory.flow_run_id).where(
            JobExecutionHistory.flow_run_id.in_([str(r.id) for r in runs]))).scalars())
        for run in runs:
            job = by_deployment.get(run.deployment_id) if run.deployment_id else None
            if job is None or str(run.id) in known:
                continue
            started = run.start_time or run.expected_start_time or utcnow()
            ended = run.end_time or (run.state.timestamp if run.state else None) or started
            message = run.state.message if run.state and run.state.message else "no message"
            session.add(JobExecutionHistory(
                job_name=job.history_name, job_type=job.key, flow_run_id=str(run.id), status=CRASHED,
                started_at=started, finished_at=ended, duration_ms=_duration(started, ended) or 0,
                error_summary=f"flow run crashed: {message}"[:2000], metrics={}))
            added += 1
    return added


def job_result_for(flow_run_id: str) -> JobResult | None:
    """The JobResult of a finished run, from its history row (None if it wrote none)."""
    with session_scope(db_url()) as session:
        row = session.execute(select(JobExecutionHistory).where(JobExecutionHistory.flow_run_id == flow_run_id)
                              .order_by(JobExecutionHistory.id.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            return None
        custom = {k: v for k, v in (row.metrics or {}).items() if k != "errors"}
        return JobResult(success=row.status not in FAILURES, job_name=row.job_name, status=row.status,
                         duration_ms=row.duration_ms, started_at=row.started_at, completed_at=row.finished_at,
                         metrics=JobMetrics(items_processed=row.total_processed, items_created=row.items_created,
                                            items_updated=row.items_updated, items_skipped=row.items_skipped,
                                            custom=custom),
                         error=row.error_summary, flow_run_id=row.flow_run_id)
