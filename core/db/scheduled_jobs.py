"""``scheduled_jobs``: recurring jobs of the job queue (seed 002) and of brands (seed 003).

Shared by two families, so it lives in the kernel; brand rows have ``brand_id`` set."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Index,
    String,
    Uuid,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import EMPTY_JSON_OBJECT, SERVER_NOW, SERVER_UUID, JsonType, UTCDateTime, utcnow


class ScheduledJob(Base):
    """A recurring job, mirrored as a Prefect deployment schedule.

    Two kinds share the table: application jobs (seed 002, ``brand_id`` NULL, run through
    the job queue) and brand jobs (seed 003, ``brand_id``/``customer_id`` set, ``job_data``
    holding the run metadata, run as ``brand-job`` flow runs)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_brand", "customer_id", "brand_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=SERVER_UUID)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    job_type: Mapped[str] = mapped_column(String(200))
    job_data: Mapped[dict[str, Any]] = mapped_column(JsonType, server_default=EMPTY_JSON_OBJECT)
    cron_expression: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    next_run_time: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    brand_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)
