"""``job_configurations``: one row per job of seeds 001 and 004 (schedule, timezone, active,
its knobs in ``config_json``). Shared by two families (Riot and crypto), so it lives in the kernel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, true
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import SERVER_NOW, JsonType, UTCDateTime, utcnow


class JobConfiguration(Base):
    """Per-job configuration: the Riot pipelines (seed 001) and the crypto jobs (seed 004)."""

    __tablename__ = "job_configurations"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_type: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")  # migration 0009
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    config_json: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)
