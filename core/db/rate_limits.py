"""The table of the shared rate limiter (``core.http.shared_limiter``): kernel, used by every family."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, String, false, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.db.types import UTCDateTime

# float8[] on PostgreSQL (the booking statement works on it in SQL); a JSON list on SQLite.
BookingLog = ARRAY(Float).with_variant(JSON(), "sqlite")


class RateLimitKey(Base):
    """One key's windows in force (``"20:1,100:120"``, as last learned from the provider or
    configured) and ``log``: the moments (epoch seconds, database clock) of its most recent
    permits, oldest first, future bookings included."""

    __tablename__ = "rate_limit_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    windows: Mapped[str] = mapped_column(String(200))
    learned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    log: Mapped[list[float]] = mapped_column(BookingLog)  # server default: empty
