"""One rate-limit budget per API key across processes and machines, kept in the app database.

Every worker already shares the application database, so the sliding log of each key lives
there (``rate_limit_permits``), with the windows learned from the provider's headers
(``rate_limit_keys``): a new process starts from what the others learned, never blind.

A permit is one short transaction: lock the key (PostgreSQL: a transaction-scoped advisory
lock; SQLite: ``BEGIN IMMEDIATE``), read the key's recent permits, and book the earliest
moment at which one more request fits every window, after every permit already booked
(first come, first served). The caller sleeps until that moment and sends: no polling, and
a backlog shared by many processes drains at the rate the windows allow. Times come from the database clock on PostgreSQL, so machines with
skewed clocks still agree. Keys never contain a secret: callers pass a fingerprint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from core.db.engine import session_scope
from core.db.rate_limits import RateLimitKey, RateLimitPermit
from core.http.limiter import Window, parse_windows

_MARGIN = 0.1  # requests arrive a little later than they leave


def format_windows(windows: list[Window]) -> str:
    return ",".join(f"{count}:{seconds:g}" for count, seconds in windows)


def next_slot(times: list[float], windows: list[Window], now: float) -> float:
    """The earliest moment, not before ``now`` nor before the last booked permit, at which one
    more permit keeps every window within its count (``times`` sorted, possibly in the future)."""
    slot = max([now, *times[-1:]])
    for count, seconds in windows:
        if len(times) >= count:
            slot = max(slot, times[-count] + seconds + _MARGIN)
    return slot


class SharedWindowLimiter:
    """Sliding-window pacing for ``key``, shared by every process using the same database.

    Same interface as :class:`core.http.limiter.SlidingWindowPacer`: ``await acquire()`` before
    each request, ``observe(limits, counts)`` with the response's headers.
    """

    def __init__(self, url: str, key: str, default_windows: list[Window], *,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        if not default_windows:
            raise ValueError(f"rate limit {key!r}: no window given")
        self._url, self.key = url, key
        self._default = format_windows(default_windows)
        self._sleep = sleep or asyncio.sleep
        self.windows = list(default_windows)

    # -- in the database -------------------------------------------------------------
    def _lock(self, session: Session) -> float:
        """Serialise writers of this key; returns the database's clock (epoch seconds)."""
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": self.key})
            return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        return time.time()  # SQLite: BEGIN IMMEDIATE already holds the lock; one machine, one clock

    def _windows(self, session: Session) -> list[Window]:
        stored = session.execute(select(RateLimitKey.windows).where(RateLimitKey.key == self.key)).scalar()
        if stored is None:
            session.execute(insert(RateLimitKey).values(key=self.key, windows=self._default))
            stored = self._default
        self.windows = parse_windows(stored) or self.windows
        return self.windows

    def _recent(self, session: Session, now: float, windows: list[Window]) -> list[float]:
        longest = max(s for _, s in windows) + _MARGIN
        return list(session.execute(
            select(RateLimitPermit.at).where(RateLimitPermit.key == self.key, RateLimitPermit.at > now - longest)
            .order_by(RateLimitPermit.at)).scalars())

    def reserve(self) -> float:
        """Book the next permit of this key; returns the seconds to wait before sending (0: now)."""
        with session_scope(self._url) as session:
            now = self._lock(session)
            windows = self._windows(session)
            times = self._recent(session, now, windows)
            slot = next_slot(times, windows, now)
            session.execute(insert(RateLimitPermit).values(key=self.key, at=slot))
            if len(times) % 50 == 0:  # now and then, forget what no window can see any more
                longest = max(s for _, s in windows) + _MARGIN
                session.execute(delete(RateLimitPermit).where(
                    RateLimitPermit.key == self.key, RateLimitPermit.at < now - longest))
            return max(0.0, slot - now)

    def record(self, limits_header: str | None, counts_header: str | None) -> None:
        """Store the server's limits; add permits when the server counted more than we did."""
        limits = parse_windows(limits_header)
        counts = parse_windows(counts_header)
        if not limits and not counts:
            return
        with session_scope(self._url) as session:
            now = self._lock(session)
            if limits and limits != self._windows(session):
                session.execute(update(RateLimitKey).where(RateLimitKey.key == self.key)
                                .values(windows=format_windows(limits), updated_at=func.now()))
                self.windows = limits
            if counts:
                longest = max(s for _, s in counts)
                times = [t for t in self._recent(session, now, [(0, longest)]) if t <= now]
                missing = max((used - sum(1 for t in times if now - t < seconds)) for used, seconds in counts)
                if missing > 0:
                    session.execute(insert(RateLimitPermit), [{"key": self.key, "at": now}] * missing)

    # -- for the clients -------------------------------------------------------------
    async def acquire(self) -> float:
        """Wait until a request may start; returns the seconds waited."""
        delay = await asyncio.to_thread(self.reserve)
        if delay > 0:
            await self._sleep(delay)
        return delay

    def observe(self, limits_header: str | None, counts_header: str | None) -> None:
        self.record(limits_header, counts_header)
