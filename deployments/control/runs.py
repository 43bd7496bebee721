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

from core.db import session_scope
from core.db.types import utcnow
from core.errors import ConfigError
from core.runs.models import JobExecutionHistory, RunStatus
from core.runs.result import JobMetrics, JobResult
from deployments.control.catalog import FIXED_JOBS, FixedJob, Job
from deployments.control.rows import duration_ms, iso
from prefect_api import crashed_runs, flow_run_url, read_deployment_or_none
from tasks._common import db_url

CRASHED = RunStatus.CRASHED.value
HISTORY_STATUSES = [s.value for s in RunStatus]
FAILURES = {RunStatus.FAILED.value, CRASHED, "failed", "Failed"}


def history_view(row: JobExecutionHistory) -> dict[str, Any]:
    return {"id": str(row.id), "status": row.status, "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at), "duration_ms": row.duration_ms,
            "counts": {"processed": row.total_processed, "successful": row.successful_count,
                       "failed": row.failed_count, "created": row.items_created, "updated": row.items_updated,
                       "skipped": row.items_skipped},
            "api_calls": row.api_calls_made, "quota_remaining": row.quota_remaining, "error": row.error_summary,
            "metrics": row.metrics, "flow_run_id": row.flow_run_id,
            "flow_run_url": flow_run_url(row.flow_run_id) if row.flow_run_id else None}


def _source(job: Job) -> tuple[Any, Any, Any, Any]:
    """(model, where-clause, time column, view) of the job's executions."""
    if isinstance(job, FixedJob):
        return (JobExecutionHistory, JobExecutionHistory.job_name == job.history_name,
                JobExecutionHistory.started_at, history_view)
    source = job.kind.history(job)
    return source.model, source.where, source.column, source.view


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
                started_at=started, finished_at=ended, duration_ms=duration_ms(started, ended) or 0,
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
