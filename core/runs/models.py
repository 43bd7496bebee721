"""The run history every job writes (``job_execution_history``) and its status vocabulary."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import JsonType, UTCDateTime


class RunStatus(StrEnum):
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    SKIPPED = "SKIPPED"
    CRASHED = "CRASHED"  # the run's process died (SIGKILL, OOM, lost machine); written by the cleanup


class JobExecutionHistory(Base):
    """One row per job run, with its counts and metrics (seed 000)."""

    __tablename__ = "job_execution_history"
    __table_args__ = (Index("ix_job_execution_history_job_started", "job_name", "started_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_name: Mapped[str] = mapped_column(String(100))
    job_type: Mapped[str] = mapped_column(String(50))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    total_processed: Mapped[int] = mapped_column(Integer, default=0)
    successful_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    items_created: Mapped[int] = mapped_column(Integer, default=0)
    items_updated: Mapped[int] = mapped_column(Integer, default=0)
    items_skipped: Mapped[int] = mapped_column(Integer, default=0)
    api_calls_made: Mapped[int] = mapped_column(Integer, default=0)
    quota_remaining: Mapped[int | None] = mapped_column(Integer)
    error_summary: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    config_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("cron_job_configs.id", ondelete="SET NULL")
    )
    # An outage (Prefect's API, SMTP) kept the run's artifact or e-mail from being made: a later
    # run fills it in (``tasks.followups``).
    artifact_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    email_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class JobAlert(Base):
    """One alarm of one job (``core.runs.alarms``): open until its condition clears (seen by
    a check), e-mailed once (``notified_at``). At most one open row per job and kind."""

    __tablename__ = "job_alerts"
    __table_args__ = (Index("ux_job_alerts_open", "job_id", "kind", unique=True,
                            postgresql_where=text("resolved_at IS NULL"), sqlite_where=text("resolved_at IS NULL")),
                      Index("ix_job_alerts_opened", "opened_at"))

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
