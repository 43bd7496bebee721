"""Tables of the shared rate limiter (``core.http.shared_limiter``): kernel, used by every family."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import UTCDateTime


class RateLimitKey(Base):
    """The windows in force for one key (``"20:1,100:120"``), as last learned from the provider."""

    __tablename__ = "rate_limit_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    windows: Mapped[str] = mapped_column(String(200))
    learned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class RateLimitPermit(Base):
    """One request started under ``key`` at ``at`` (epoch seconds, database clock)."""

    __tablename__ = "rate_limit_permits"
    __table_args__ = (Index("ix_rate_limit_permits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[float] = mapped_column(Float)
