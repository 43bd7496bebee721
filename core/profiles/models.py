"""Tables of the profile fetcher (seed 000): entries, profiles, the quota ledger, job configs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import SERVER_NOW, JsonType, UTCDateTime, utcnow


class EntryStatus(StrEnum):
    PENDING = "PENDING"
    FETCHING = "FETCHING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class CronJobConfig(Base):
    """One scheduled job's knobs; defaults are inserted when missing (seed 000)."""

    __tablename__ = "cron_job_configs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    job_type: Mapped[str] = mapped_column(String(50))
    schedule: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    batch_size: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    respect_quota: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_run: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)


class ApiQuota(Base):
    """The quota ledger: one row per provider and reset period, named by the reset's fire
    time in UTC (``2026-01-15T00:00Z``, see ``core.profiles.quota.period_of``)."""

    __tablename__ = "api_quota_ledger"
    __table_args__ = (UniqueConstraint("provider", "period", name="uq_api_quota_provider_period"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    period: Mapped[str] = mapped_column(String(32))
    monthly_limit: Mapped[int] = mapped_column(Integer)
    calls_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)


class ProfileEntry(Base):
    """A LinkedIn URN waiting to be fetched, and what became of it."""

    __tablename__ = "profile_entries"
    __table_args__ = (Index("ix_profile_entries_status_created", "status", "created_at", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    urn: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=EntryStatus.PENDING, server_default="PENDING")
    error_message: Mapped[str | None] = mapped_column(Text)
    fetch_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # Set, durably, just before the claiming run sends the request: what a dead run billed.
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A PENDING entry the provider refused for now (429/5xx after the retries): not claimed before.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)


class Profile(Base):
    """The cleaned profile, with the object keys of its raw and cleaned documents."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    urn: Mapped[str] = mapped_column(String(200), unique=True)
    username: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    headline: Mapped[str | None] = mapped_column(Text)
    geo: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    educations: Mapped[list[Any] | None] = mapped_column(JsonType)
    full_positions: Mapped[list[Any] | None] = mapped_column(JsonType)
    skills: Mapped[list[Any] | None] = mapped_column(JsonType)
    raw_s3_key: Mapped[str] = mapped_column(String(500))
    cleaned_s3_key: Mapped[str] = mapped_column(String(500))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ShareState(StrEnum):
    SCHEDULED = "SCHEDULED"  # waiting for a task worker
    RUNNING = "RUNNING"  # a task worker fetches; ``beat_at`` moves while it lives
    DONE = "DONE"  # finished; ``tally`` holds what it did
    CANCELLED = "CANCELLED"  # never started: its run had finished the work itself
    RELEASED = "RELEASED"  # stopped beating: its run released its claims and took its work back


class FetchShare(Base):
    """A part of one profile-fetcher run that a Prefect task worker takes (``tasks.profiles.share``):
    ``id`` is the claimant its entries are claimed by; ``run_id`` the run it belongs to."""

    __tablename__ = "fetch_shares"
    __table_args__ = (Index("ix_fetch_shares_run", "run_id"), Index("ix_fetch_shares_live", "state", "beat_at"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default=ShareState.SCHEDULED, server_default="SCHEDULED")
    task_run_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tally: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
