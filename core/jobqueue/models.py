"""Tables of the application job queue (seed 002): jobs, and the example handlers' rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import EMPTY_JSON_OBJECT, SERVER_NOW, SERVER_UUID, JsonType, UTCDateTime, utcnow


class JobStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"



class Job(Base):
    """An application job (seed 002): the row is also the transactional outbox entry."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        # Claims: the oldest Pending jobs of a type; the per-type limit: its Running jobs (0012).
        Index("ix_jobs_pending", "job_type", "created_at", "id", postgresql_where=text("status = 'Pending'"),
              sqlite_where=text("status = 'Pending'")),
        Index("ix_jobs_running", "job_type", postgresql_where=text("status = 'Running'"),
              sqlite_where=text("status = 'Running'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=SERVER_UUID)
    job_type: Mapped[str] = mapped_column(String(200))
    job_data: Mapped[dict[str, Any]] = mapped_column(JsonType, server_default=EMPTY_JSON_OBJECT)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.PENDING, server_default="Pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    progress_message: Mapped[str | None] = mapped_column(Text)
    progress_percent: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by a cancel request while the job runs; the worker's next heartbeat sees it and
    # tells the handler (``JobProgress.cancellation``); the attempt then ends Cancelled.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    task_run_id: Mapped[str | None] = mapped_column(String(64))
    scheduled_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Pending again after its handler met a provider's "later" (429/5xx): claimed from then on.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Registration(Base):
    """An event registration; expired ones are purged by PurgeExpiredRegistrationsJob."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
