"""The shared rate limiter as it was before permits became one statement: the benchmark's
baseline (``bench.limiter_bench``), kept verbatim but for its permits' table model, which
no longer lives in ``core`` (the table ``rate_limit_permits`` still exists: migration 0010).

One rate-limit budget per API key across processes and machines, kept in the app database.

Every worker already shares the application database, so the sliding log of each key lives
there (``rate_limit_permits``), with the windows learned from the provider's headers
(``rate_limit_keys``): a new process starts from what the others learned, never blind.

A request may need permits of several keys at once (Riot: the application limit of its
routing value and the method limit). One short transaction books them together: lock the
keys (PostgreSQL: transaction-scoped advisory locks, in a fixed order; SQLite:
``BEGIN IMMEDIATE``), read their recent permits, and book the earliest moment at which one
more request fits every window of every key, after every permit already booked (first come,
first served). The caller sleeps until that moment and sends: no polling, and a backlog
shared by many processes drains at the rate the windows allow. Booking the keys jointly
matters: a request that took the application permit and then waited for the method permit
would leave later than its booking and crowd the application window.

A key no response has described yet is *unlearned*: one request per second goes out until
the provider's headers tell the real windows, so a first process never bursts blind on a
configured default that may be too generous. A waiter whose keys' windows change while it
sleeps (``observe`` learned new ones) gives its slots back and books again under the new ones.
Times come from the database clock on PostgreSQL, so machines with skewed clocks agree. Keys
never contain a secret: callers pass a fingerprint of the API key.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import Float, Integer, String, delete, func, insert, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core.db.engine import session_scope
from core.db.rate_limits import RateLimitKey
from core.http.limiter import Window, parse_windows


class _Base(DeclarativeBase):
    pass


class RateLimitPermit(_Base):
    """One request started under ``key`` at ``at`` (epoch seconds, database clock)."""

    __tablename__ = "rate_limit_permits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[float] = mapped_column(Float)

_MARGIN = 0.25  # requests arrive a little later than they leave (event-loop and network jitter)
_PROBE: list[Window] = [(1, 1.0)]  # until the provider's headers have been seen once
_RECHECK = 0.5  # a sleeping waiter looks at its keys' windows this often

Sleep = Callable[[float], Awaitable[None]]


def key_fingerprint(secret: str) -> str:
    """A short, stable name for an API key: budgets are keyed by it, never by the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


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


class SharedBudget:
    """Sliding-window pacing over one or more keys, shared by every process on the database.

    ``await acquire()`` before each request (it books one permit of every key), then
    ``observe(key, limits_header, counts_header)`` with the response's headers.
    """

    def __init__(self, url: str, keys: Mapping[str, list[Window]], *, sleep: Sleep | None = None,
                 configured: bool = False) -> None:
        """``configured``: the windows given are the provider's plan, not a guess to be
        corrected by headers (CoinGecko's calls per minute, RapidAPI's per-second limit):
        they are in force at once, and a changed configuration replaces the stored ones."""
        for key, windows in keys.items():
            if not windows:
                raise ValueError(f"rate limit {key!r}: no window given")
        if not keys:
            raise ValueError("a budget needs at least one key")
        self._url = url
        self._keys = sorted(keys)  # a fixed lock order: no deadlock between budgets sharing keys
        self._defaults = {key: format_windows(w) for key, w in keys.items()}
        self._sleep = sleep or asyncio.sleep
        self._configured = configured
        self.windows: dict[str, list[Window]] = {key: list(w) for key, w in keys.items()}

    # -- in the database -------------------------------------------------------------
    def _lock(self, session: Session, keys: list[str]) -> float:
        """Serialise writers of ``keys``; returns the database's clock (epoch seconds)."""
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            for key in keys:
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})
            return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        return time.time()  # SQLite: BEGIN IMMEDIATE already holds the lock; one machine, one clock

    def _windows(self, session: Session, key: str) -> tuple[list[Window], str]:
        """The key's windows in force and their version (changes whenever they are learned)."""
        row = session.execute(select(RateLimitKey.windows, RateLimitKey.learned)
                              .where(RateLimitKey.key == key)).first()
        if row is None:
            session.execute(insert(RateLimitKey).values(key=key, windows=self._defaults[key],
                                                        learned=self._configured))
            stored, learned = self._defaults[key], self._configured
        else:
            stored, learned = row
            if self._configured and (stored, learned) != (self._defaults[key], True):
                session.execute(update(RateLimitKey).where(RateLimitKey.key == key).values(
                    windows=self._defaults[key], learned=True, updated_at=func.now()))
                stored, learned = self._defaults[key], True
        self.windows[key] = parse_windows(stored) or self.windows[key]
        return (self.windows[key] if learned else _PROBE), f"{key}={learned}:{stored}"

    def _recent(self, session: Session, key: str, now: float, windows: list[Window]) -> list[float]:
        longest = max(s for _, s in windows) + _MARGIN
        return list(session.execute(
            select(RateLimitPermit.at).where(RateLimitPermit.key == key, RateLimitPermit.at > now - longest)
            .order_by(RateLimitPermit.at)).scalars())

    def version(self) -> str:
        """The keys' current windows versions (one cheap read)."""
        with session_scope(self._url) as session:
            rows = {key: f"{key}={learned}:{windows}" for key, learned, windows in session.execute(
                select(RateLimitKey.key, RateLimitKey.learned, RateLimitKey.windows)
                .where(RateLimitKey.key.in_(self._keys)))}
        return "|".join(rows.get(key, f"{key}=?") for key in self._keys)

    def cancel(self, permits: list[int]) -> None:
        """Give booked permits back (their waiter books again)."""
        with session_scope(self._url) as session:
            session.execute(delete(RateLimitPermit).where(RateLimitPermit.id.in_(permits)))

    def reserve(self) -> tuple[float, list[int] | None, str]:
        """Book one permit of every key: (seconds to wait before sending, permit ids, version).

        While a key is unlearned nothing is booked ahead (ids None: ask again after the
        delay), so no stale booking outlives the probe."""
        with session_scope(self._url) as session:
            now = self._lock(session, self._keys)
            plans, versions, slot, probing = [], [], now, False
            for key in self._keys:
                windows, version = self._windows(session, key)
                probing |= windows is _PROBE
                times = self._recent(session, key, now, [*windows, *self.windows[key]])
                slot = max(slot, next_slot(times, windows, now))
                plans.append((key, windows, times))
                versions.append(version)
            version = "|".join(versions)
            if probing and slot > now:
                return slot - now, None, version
            permits = []
            for key, windows, times in plans:
                permits.append(session.execute(insert(RateLimitPermit).values(key=key, at=slot)
                                               .returning(RateLimitPermit.id)).scalar_one())
                if len(times) % 50 == 0:  # now and then, forget what no window can see any more
                    longest = max(s for _, s in windows) + _MARGIN
                    session.execute(delete(RateLimitPermit).where(
                        RateLimitPermit.key == key, RateLimitPermit.at < now - max(longest, 1.0 + _MARGIN)))
            return max(0.0, slot - now), permits, version

    def record(self, key: str, limits_header: str | None, counts_header: str | None) -> None:
        """Store the server's limits for ``key``; add permits when it counted more than we did."""
        limits = parse_windows(limits_header)
        counts = parse_windows(counts_header)
        if not limits and not counts:
            return
        with session_scope(self._url) as session:
            now = self._lock(session, [key])
            _, version = self._windows(session, key)
            if limits and version != f"{key}=True:{format_windows(limits)}":
                session.execute(update(RateLimitKey).where(RateLimitKey.key == key)
                                .values(windows=format_windows(limits), learned=True, updated_at=func.now()))
                self.windows[key] = limits
                if "=False:" in version:
                    # The probe's permit counts from its answer: a first request on a cold
                    # connection may reach the provider (and open its window) well after booking.
                    session.execute(update(RateLimitPermit).where(
                        RateLimitPermit.key == key, RateLimitPermit.at > now - 2 * _PROBE[0][1] - _MARGIN)
                        .values(at=now))
            if counts:
                # Requests the provider counted that no process of ours booked (another app on
                # the key). They join the tail of the log, after every booking, so that no slot
                # already given to a waiter is invalidated.
                booked = self._recent(session, key, now, [(0, max(s for _, s in counts))])
                past = [t for t in booked if t <= now]
                missing = max((used - sum(1 for t in past if now - t < seconds + _MARGIN))
                              for used, seconds in counts)
                if missing > 0:
                    tail = max([now, *booked[-1:]])
                    session.execute(insert(RateLimitPermit), [{"key": key, "at": tail}] * missing)

    # -- for the clients -------------------------------------------------------------
    async def acquire(self) -> float:
        """Wait until a request may start; returns the seconds waited."""
        waited = 0.0
        while True:
            delay, permits, version = await asyncio.to_thread(self.reserve)
            if permits is None:  # probing an unlearned key: ask again soon
                step = min(delay, _RECHECK)
                await self._sleep(step)
                waited += step
                continue
            # Look at the windows while there is time to spare, never just before sending: a
            # read there would make the request leave late and crowd the window behind it.
            while delay > _RECHECK:
                await self._sleep(_RECHECK)
                waited, delay = waited + _RECHECK, delay - _RECHECK
                if await asyncio.to_thread(self.version) != version:  # booked under windows now gone
                    await asyncio.to_thread(self.cancel, permits)
                    break
            else:
                if delay > 0:
                    await self._sleep(delay)
                return waited + delay

    def observe(self, key: str, limits_header: str | None, counts_header: str | None) -> None:
        self.record(key, limits_header, counts_header)


class SharedWindowLimiter(SharedBudget):
    """A budget of one key, with the interface of :class:`core.http.limiter.SlidingWindowPacer`."""

    def __init__(self, url: str, key: str, default_windows: list[Window], *, sleep: Sleep | None = None,
                 configured: bool = False) -> None:
        super().__init__(url, {key: default_windows}, sleep=sleep, configured=configured)
        self.key = key

    def observe(self, limits_header: str | None, counts_header: str | None) -> None:  # type: ignore[override]
        self.record(self.key, limits_header, counts_header)
