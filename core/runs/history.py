"""Job execution history: one row per run, with counts and metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.runs.models import JobExecutionHistory


@dataclass
class RunRecord:
    """Everything a finished run reports; maps 1:1 onto ``job_execution_history``."""

    job_name: str
    job_type: str
    status: str
    started_at: datetime
    finished_at: datetime
    flow_run_id: str | None = None
    total_processed: int = 0
    successful_count: int = 0
    failed_count: int = 0
    items_created: int = 0
    items_updated: int = 0
    items_skipped: int = 0
    api_calls_made: int = 0
    quota_remaining: int | None = None
    error_summary: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    config_id: int | None = None

    @property
    def duration_ms(self) -> int:
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


RunOutcome = Callable[[RunRecord, BaseException | None], RunRecord]
"""A family's own account of a run: given the record ``run_job`` built from the job's
metrics (and the exception the body raised, if any), the record to store. For families whose
status rules go beyond the generic ones (the profile fetcher's quota)."""


def record_run(session: Session, record: RunRecord) -> int:
    """Insert the history row; returns its id."""
    row = JobExecutionHistory(**asdict(record), duration_ms=record.duration_ms)
    session.add(row)
    session.flush()
    return row.id


def record_of(row: JobExecutionHistory) -> RunRecord:
    """The run a history row records."""
    return RunRecord(job_name=row.job_name, job_type=row.job_type, status=row.status,
                     started_at=row.started_at, finished_at=row.finished_at, flow_run_id=row.flow_run_id,
                     total_processed=row.total_processed, successful_count=row.successful_count,
                     failed_count=row.failed_count, items_created=row.items_created,
                     items_updated=row.items_updated, items_skipped=row.items_skipped,
                     api_calls_made=row.api_calls_made, quota_remaining=row.quota_remaining,
                     error_summary=row.error_summary, metrics=dict(row.metrics or {}),
                     config_id=row.config_id)


FOLLOWUPS = ("artifact_pending", "email_pending")


def mark_followup(session: Session, row_id: int, what: str, pending: bool = True) -> None:
    """Say that the run's artifact or e-mail (``what``: one of ``FOLLOWUPS``) is still to be made."""
    if what not in FOLLOWUPS:
        raise ValueError(f"unknown follow-up {what!r}: one of {FOLLOWUPS}")
    session.execute(update(JobExecutionHistory).where(JobExecutionHistory.id == row_id).values({what: pending}))


def take_followups(session: Session, what: str, limit: int = 20) -> list[JobExecutionHistory]:
    """Take up to ``limit`` runs whose ``what`` is pending (oldest first), clearing the flag:
    two runs filling in at once never make the same one twice. Put it back with
    ``mark_followup`` if making it fails."""
    if what not in FOLLOWUPS:
        raise ValueError(f"unknown follow-up {what!r}: one of {FOLLOWUPS}")
    flag = getattr(JobExecutionHistory, what)
    query = select(JobExecutionHistory).where(flag.is_(True)).order_by(JobExecutionHistory.id).limit(limit)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.execute(query).scalars())
    for row in rows:
        setattr(row, what, False)
    session.flush()
    return rows


def latest_runs(session: Session, job_name: str, limit: int = 10) -> list[JobExecutionHistory]:
    return list(
        session.execute(
            select(JobExecutionHistory)
            .where(JobExecutionHistory.job_name == job_name)
            .order_by(JobExecutionHistory.started_at.desc(), JobExecutionHistory.id.desc())
            .limit(limit)
        ).scalars()
    )


def has_run(session: Session, flow_run_id: str) -> bool:
    """Whether the flow run already has its history row."""
    return session.execute(select(JobExecutionHistory.id).where(
        JobExecutionHistory.flow_run_id == flow_run_id).limit(1)).first() is not None


def job_name_of(flow_name: str, parameters: dict[str, Any]) -> str:
    """The ``job_name`` a flow records its runs under (``profile-fetcher`` -> ``profile_fetcher``;
    brand jobs by their ``job_type``), so a crashed run's row sits beside its siblings."""
    if flow_name == "brand-job":
        return f"brand_{parameters.get('job_type') or 'data_collection_and_scoring'}"
    return flow_name.replace("-", "_")
