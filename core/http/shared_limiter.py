"""One rate-limit budget per API key across processes and machines, kept in the app database.

Every worker already shares the application database, so each key's budget lives there, on
its row of ``rate_limit_keys``: the windows in force (learned from the provider's headers, or
configured), and ``log``, the moments of the key's most recent permits (at most ``LOG_SIZE``,
oldest first, future bookings included). A new process starts from what the others learned.

A permit is one short statement (PostgreSQL, in autocommit): lock the rows of the request's
keys in a fixed order, read the database clock, compute the earliest moment at which one more
request fits every window of every key, after every permit already booked (first come, first
served), append it to each key's log and return it. The rows are locked for the statement
alone, a few hundred microseconds, and only processes on the same key ever wait for each
other. The limiter's connections commit with ``synchronous_commit = off``: a permit does not
wait for the WAL flush (a crash of the database server itself could forget the last fraction
of a second of bookings, which costs at most a few early requests). On SQLite (one machine)
the same rule runs in Python inside a short ``BEGIN IMMEDIATE`` transaction. The caller
sleeps until its moment and sends: no polling, and a backlog shared by many processes drains
at the rate the windows allow. A request that needs several keys (Riot: the application
limit of its routing value and the method limit) books them jointly at one common moment,
the latest any of them needs: one taken first and the other waited for would leave later
than its booking and crowd the first key's window.

Each window is kept by the rule of ``core.http.limiter`` (``next_slot``: a sliding log,
short windows spent in bursts of a tenth, huge ones paced) with a margin for arrival jitter.
Database time is turned into local time by the fastest recent answer's offset (``_Clock``),
so that a slow answer to the booking does not make its request late as well; a request
held up past its moment anyway (a busy machine) gives it back and books again, and a
process's first request under a key, which opens a connection, is counted as if it arrived
up to ``_COLD_LEAD`` late.

A key no response has described yet is *unlearned*: one request per second goes out until
the provider's headers tell the real windows, so a first process never bursts blind on a
configured default that may be too generous; ``configured`` windows (the provider's plan)
are in force at once. Requests the provider counted that no process of ours booked (another
application on the key) join the tail of the log. A waiter whose keys' windows change while
it sleeps gives its moment back and books again under the new ones. Times come from the
database clock on PostgreSQL, so machines with skewed clocks agree. Keys never contain a
secret: callers pass a fingerprint of the API key. Every database step rides out an outage
(``core.db.outage``) for the budget the caller gives.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db.engine import libpq_url, normalize_url, session_scope
from core.db.outage import DEFAULT_BUDGET_S, ride_out, ride_out_thread
from core.db.rate_limits import RateLimitKey
from core.http.limiter import (
    LOG_SIZE,
    MARGIN_CAP,
    MARGIN_SHARE,
    PROBE,
    SHORT_WINDOW,
    Window,
    format_windows,
    next_slot,
    parse_windows,
    pushed_back,
    uncounted,
    window_span,
)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

_RECHECK = 0.5  # a sleeping waiter looks at its keys' windows this often
_OFFSET_MEMORY = 10  # seconds of answers the database-to-local clock offset is taken from


def key_fingerprint(secret: str) -> str:
    """A short, stable name for an API key: budgets are keyed by it, never by the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


# -- PostgreSQL: one statement per permit ------------------------------------------------
def _window_bound(log: str) -> str:
    """``next_slot``'s bound of one window ``w`` (columns c, s, span, size) in SQL."""
    last = f"cardinality({log})"
    return (f"greatest(CASE WHEN w.c <= {LOG_SIZE} THEN {log}[{last} - w.c + 1] + w.span END, "
            f"{log}[{last} - w.size + 1] + w.size * w.span / w.c)")


# A subscript out of range is NULL, which max() and greatest() ignore: a log shorter than a
# window's count does not bind it. ``clock`` reads the time once the rows are held, so that
# no lock wait sits between the clock and the booking.
_BOOK = f"""
WITH held AS (
    SELECT key, windows, learned, log FROM rate_limit_keys
    WHERE key = ANY(CAST(%(keys)s AS text[])) ORDER BY key FOR UPDATE
),
clock AS (
    SELECT extract(epoch FROM clock_timestamp())::float8 AS now, count(*) AS found FROM held
),
bound AS (
    SELECT h.key, max({_window_bound("h.log")}) AS at
    FROM held h CROSS JOIN LATERAL (
        SELECT p.c, p.s, p.s + least({MARGIN_CAP}, {MARGIN_SHARE} * p.s) AS span,
               CASE WHEN p.c > {LOG_SIZE} THEN 1 WHEN p.s <= {SHORT_WINDOW} THEN (p.c + 9) / 10 ELSE p.c END AS size
        FROM (SELECT split_part(part, ':', 1)::int AS c, split_part(part, ':', 2)::float8 AS s
              FROM unnest(string_to_array(CASE WHEN h.learned THEN h.windows
                                               ELSE '{format_windows(PROBE)}' END, ',')) AS part) p
    ) w
    GROUP BY h.key
),
plan AS (
    SELECT c.now, c.found,
           greatest(c.now, (SELECT max(at) FROM bound),
                    (SELECT max(log[cardinality(log)]) FROM held)) AS slot,
           coalesce((SELECT bool_or(NOT learned) FROM held), false) AS probing
    FROM clock c
),
booked AS (
    UPDATE rate_limit_keys k SET log = (k.log || p.slot)[greatest(1, cardinality(k.log) + 2 - {LOG_SIZE}):]
    FROM plan p
    WHERE k.key IN (SELECT key FROM held) AND p.found = %(n)s AND NOT (p.probing AND p.slot > p.now)
    RETURNING k.key
)
SELECT p.slot, p.now, p.found, (SELECT count(*) FROM booked) AS booked, h.key, h.windows, h.learned
FROM plan p LEFT JOIN held h ON true
"""
_CANCEL = """
WITH held AS (
    SELECT key FROM rate_limit_keys WHERE key = ANY(CAST(%(keys)s AS text[])) ORDER BY key FOR UPDATE
)
UPDATE rate_limit_keys k
SET log = k.log[1:array_position(k.log, CAST(%(slot)s AS float8)) - 1]
          || k.log[array_position(k.log, CAST(%(slot)s AS float8)) + 1:]
WHERE k.key IN (SELECT key FROM held) AND array_position(k.log, CAST(%(slot)s AS float8)) IS NOT NULL
"""
_VERSION = "SELECT key, learned, windows FROM rate_limit_keys WHERE key = ANY(CAST(%(keys)s AS text[]))"
_LOG = "SELECT log, extract(epoch FROM clock_timestamp())::float8 FROM rate_limit_keys WHERE key = %(key)s"

_ready: set[tuple[str, str, str, bool]] = set()  # (url, key, default windows, configured) made
_clocks: dict[str, _Clock] = {}
_versions: dict[tuple[str, ...], tuple[float, str]] = {}  # (url, *keys) -> (read at, version)
_lock = threading.Lock()
# (event loop id, url) -> (the loop, its connection): statements of concurrent requests take
# turns on it, on the event loop (no thread hop, none of the GIL's back and forth with it).
_connections: dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, psycopg.AsyncConnection[Any]]] = {}


def _finish(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.pgconn.finish()  # synchronous: also when its event loop is gone


async def _connection(url: str) -> psycopg.AsyncConnection[Any]:
    """This event loop's connection to ``url`` for the limiter: autocommit, and commits that do
    not wait for the WAL flush (``synchronous_commit = off``)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), url)
    found = _connections.get(key)
    if found is not None and found[0] is loop and not found[1].closed and not found[1].broken:
        return found[1]
    for other, (its_loop, conn) in list(_connections.items()):  # connections of finished loops
        if its_loop.is_closed() or other == key:
            _finish(conn)
            del _connections[other]
    conn = await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True, application_name="rate-limiter",
                                                 options="-c synchronous_commit=off")
    if key in _connections:  # another request of this loop connected meanwhile
        _finish(conn)
        return _connections[key][1]
    _connections[key] = (loop, conn)
    return conn


async def _pg(url: str, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """One statement on this loop's connection; a broken connection is not used again."""
    conn = await _connection(url)
    try:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchall() if cursor.description else []
    except psycopg.OperationalError:
        _finish(conn)
        raise


def _forget_connections() -> None:
    # A forked child must not talk on its parent's connections (nor close them).
    _connections.clear()


def _close_connections() -> None:
    for _, conn in list(_connections.values()):
        _finish(conn)
    _connections.clear()


os.register_at_fork(after_in_child=_forget_connections)
atexit.register(_close_connections)


class _Clock:
    """Database time to ``time.monotonic()``: the offset of the fastest answer of the last
    ``_OFFSET_MEMORY`` seconds (an answer is never early, so the fastest is nearest the truth)."""

    def __init__(self) -> None:
        self._best: deque[tuple[int, float]] = deque()  # (second, smallest offset seen in it)
        self._lock = threading.Lock()

    def local(self, moment: float, db_now: float, arrived: float) -> float:
        offset, second = arrived - db_now, int(arrived)
        with self._lock:
            if self._best and self._best[-1][0] == second:
                offset = min(offset, self._best[-1][1])
                self._best[-1] = (second, offset)
            else:
                self._best.append((second, offset))
            while self._best[0][0] < second - _OFFSET_MEMORY:
                self._best.popleft()
            return moment + min(best for _, best in self._best)


def _clock(url: str) -> _Clock:
    with _lock:
        return _clocks.setdefault(url, _Clock())


@dataclass
class Permit:
    """One booked moment of a budget: ``due`` on ``time.monotonic()``, ``waited`` for it."""

    budget: SharedBudget
    slot: float  # database time, as the keys' logs hold it
    due: float
    waited: float
    renewed: bool = False

    def late(self) -> bool:
        return time.monotonic() - self.due > self.budget._stale_after()

    async def keep_fresh(self) -> float:
        """Call just before the request is written (its connection made, its callbacks run):
        a permit that went stale meanwhile (a connection to open, a slow commit) is given back
        and taken again, once; returns the seconds that waited."""
        if self.renewed or not self.late():
            return 0.0
        await self.budget.cancel(self.slot)
        fresh = await self.budget.permit(give_back_late=False)
        self.slot, self.due, self.renewed = fresh.slot, fresh.due, True
        return fresh.waited


@dataclass(frozen=True)
class _Booked:
    slot: float  # database time the request may leave
    now: float  # database time when booked
    booked: bool  # False: nothing booked (a probing key's next request is not due yet)
    keys: dict[str, tuple[str, bool]]  # key -> (windows, learned), as the booking saw them


class SharedBudget:
    """Pacing over one or more keys, shared by every process on the database.

    ``await acquire()`` before each request (it books one permit of every key at one moment),
    then ``await observe(key, limits_header, counts_header)`` with the response's headers.
    """

    def __init__(self, url: str, keys: Mapping[str, list[Window]], *, sleep: Sleep | None = None,
                 configured: bool = False, outage_budget: float = DEFAULT_BUDGET_S) -> None:
        """``configured``: the windows given are the provider's plan, not a guess to be
        corrected by headers (CoinGecko's calls per minute, RapidAPI's per-second limit):
        they are in force at once, and a changed configuration replaces the stored ones.
        ``outage_budget``: how long each database step waits out an unreachable database."""
        for key, windows in keys.items():
            if not windows:
                raise ValueError(f"rate limit {key!r}: no window given")
        if not keys:
            raise ValueError("a budget needs at least one key")
        self._url = url
        self._postgres = normalize_url(url).startswith("postgresql")
        self._keys = sorted(keys)  # a fixed lock order: no deadlock between budgets sharing keys
        self._defaults = {key: format_windows(w) for key, w in keys.items()}
        self._sleep = sleep or asyncio.sleep
        self._configured = configured
        self._outage_budget = outage_budget
        self.windows: dict[str, list[Window]] = {key: list(w) for key, w in keys.items()}
        self._learned: dict[str, bool] = {}

    # -- in the database (each a synchronous step, run in a thread) ----------------------
    def _ensure(self) -> None:
        """Create the keys' rows once per process (a configured key: with its windows)."""
        todo = [key for key in self._keys
                if (self._url, key, self._defaults[key], self._configured) not in _ready]
        if not todo:
            return
        with session_scope(self._url) as session:
            insert = postgresql.insert if self._postgres else sqlite.insert
            for key in todo:
                stmt = insert(RateLimitKey).values(key=key, windows=self._defaults[key],
                                                   learned=self._configured, log=[])
                if self._configured:
                    session.execute(stmt.on_conflict_do_update(
                        index_elements=["key"],
                        set_={"windows": self._defaults[key], "learned": True, "updated_at": func.now()},
                        where=(RateLimitKey.windows != self._defaults[key]) | ~RateLimitKey.learned))
                else:
                    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
        _ready.update((self._url, key, self._defaults[key], self._configured) for key in todo)

    async def _book_postgres(self) -> _Booked:
        rows = await _pg(self._url, _BOOK, {"keys": self._keys, "n": len(self._keys)})
        slot, now, found, booked = rows[0][:4]
        return _Booked(slot, now, bool(booked) and found == len(self._keys),
                       {key: (windows, learned) for *_, key, windows, learned in rows if key is not None})

    def _book_sqlite(self) -> _Booked:
        with session_scope(self._url) as session:  # BEGIN IMMEDIATE: the one writer
            rows = {r.key: r for r in session.execute(
                select(RateLimitKey.key, RateLimitKey.windows, RateLimitKey.learned, RateLimitKey.log)
                .where(RateLimitKey.key.in_(self._keys)))}
            now = time.time()
            keys = {key: (r.windows, r.learned) for key, r in rows.items()}
            if len(rows) < len(self._keys):
                return _Booked(now, now, False, keys)
            slot = max(next_slot(r.log, parse_windows(r.windows) if r.learned else PROBE, now)
                       for r in rows.values())
            if any(not r.learned for r in rows.values()) and slot > now:
                return _Booked(slot, now, False, keys)
            for key, r in rows.items():
                session.execute(update(RateLimitKey).where(RateLimitKey.key == key)
                                .values(log=[*r.log, slot][-LOG_SIZE:]))
            return _Booked(slot, now, True, keys)

    async def _book(self) -> tuple[float, float, float | None, str]:
        """Book one permit of every key: (seconds until the request may leave, the same moment
        on ``time.monotonic()``, the moment booked (database time) or None, the windows version)."""
        for _ in range(3):
            if not self._made():
                await self._step(self._ensure, what="rate-limit keys")
            if self._postgres:
                booked = await self._ride(self._book_postgres, what="a rate-limit permit")
            else:
                booked = await self._step(self._book_sqlite, what="a rate-limit permit")
            arrived = time.monotonic()
            if len(booked.keys) == len(self._keys):
                break
            # The rows are gone (a table emptied under us): make them again.
            _ready.difference_update([r for r in _ready if r[0] == self._url and r[1] in self._keys])
        else:
            raise RuntimeError(f"rate limit keys {self._keys} could not be created")
        for key, (windows, learned) in booked.keys.items():
            self.windows[key] = parse_windows(windows) or self.windows[key]
            self._learned[key] = learned
        due = _clock(self._url).local(booked.slot, booked.now, arrived)
        version = "|".join(f"{key}={booked.keys[key][1]}:{booked.keys[key][0]}" for key in self._keys)
        return max(0.0, due - time.monotonic()), due, booked.slot if booked.booked else None, version

    async def reserve(self) -> tuple[float, float | None, str]:
        """Book one permit of every key: (seconds to wait before sending, the moment booked,
        windows version). While a key is unlearned nothing is booked ahead (moment None: ask
        again after the delay), so no stale booking outlives the probe."""
        delay, _, slot, version = await self._book()
        return delay, slot, version

    async def version(self) -> str:
        """The keys' current windows versions (one cheap read)."""
        if self._postgres:
            found = await self._ride(lambda: _pg(self._url, _VERSION, {"keys": self._keys}),
                                     what="rate-limit windows")
        else:
            found = await self._step(self._version_sqlite, what="rate-limit windows")
        rows = {key: f"{key}={learned}:{windows}" for key, learned, windows in found}
        return "|".join(rows.get(key, f"{key}=?") for key in self._keys)

    def _version_sqlite(self) -> list[tuple[Any, ...]]:
        with session_scope(self._url) as session:
            return [tuple(r) for r in session.execute(
                select(RateLimitKey.key, RateLimitKey.learned, RateLimitKey.windows)
                .where(RateLimitKey.key.in_(self._keys)))]

    def _held(self, session: Session, keys: list[str]) -> dict[str, Any]:
        return {r.key: r for r in session.execute(
            select(RateLimitKey.key, RateLimitKey.windows, RateLimitKey.learned, RateLimitKey.log)
            .where(RateLimitKey.key.in_(keys)).order_by(RateLimitKey.key).with_for_update())}

    def _now(self, session: Session) -> float:
        if self._postgres:
            return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        return time.time()  # SQLite: one machine, one clock

    async def cancel(self, slot: float) -> None:
        """Give a booked moment back (its request was not sent; its waiter books again)."""
        if self._postgres:
            await self._ride(lambda: _pg(self._url, _CANCEL, {"keys": self._keys, "slot": slot}),
                             what="a rate-limit permit given back")
        else:
            await self._step(self._cancel_sqlite, slot, what="a rate-limit permit given back")

    def _cancel_sqlite(self, slot: float) -> None:
        with session_scope(self._url) as session:
            for key, row in self._held(session, self._keys).items():
                if slot in row.log:
                    log = list(row.log)
                    log.remove(slot)
                    session.execute(update(RateLimitKey).where(RateLimitKey.key == key).values(log=log))

    def _news(self, key: str, limits_header: str | None,
              counts_header: str | None) -> tuple[list[Window], list[Window]]:
        """The limits worth learning (none for a configured key, nor the ones the booking saw)
        and the counts given."""
        limits = [] if self._configured else parse_windows(limits_header)
        if limits and self._learned.get(key) and self.windows[key] == limits:
            limits = []
        return limits, parse_windows(counts_header)

    def record(self, key: str, limits_header: str | None, counts_header: str | None) -> None:
        """``observe``, synchronously (one transaction per step, no fast read)."""
        limits, counts = self._news(key, limits_header, counts_header)
        self._ensure()
        if limits:
            self._learn(key, limits)
        if counts:
            self._push_back(key, counts)

    def _push_back(self, key: str, counts: list[Window]) -> None:
        """Add to the log the requests the provider counted beyond ours."""
        with session_scope(self._url) as session:
            row = self._held(session, [key]).get(key)
            if row is not None:
                now = self._now(session)
                if missing := uncounted(row.log, counts, now):
                    windows = parse_windows(row.windows) if row.learned else PROBE
                    session.execute(update(RateLimitKey).where(RateLimitKey.key == key)
                                    .values(log=pushed_back(list(row.log), windows, missing, now)))

    def _learn(self, key: str, limits: list[Window]) -> None:
        with session_scope(self._url) as session:
            row = self._held(session, [key]).get(key)
            if row is None or (row.windows, row.learned) == (format_windows(limits), True):
                return
            log = list(row.log)
            if not row.learned:
                # The probe's permit counts from its answer: a first request on a cold
                # connection may reach the provider (and open its window) well after booking,
                # and surely has once answered. (Nothing is booked ahead while probing: a later
                # entry is a cold request's, counted later than it left.)
                now = self._now(session)
                recent = now - 2 * PROBE[0][1] - window_span(PROBE[0][1])
                log = [now if t > recent else t for t in log]
            session.execute(update(RateLimitKey).where(RateLimitKey.key == key).values(
                windows=format_windows(limits), learned=True, updated_at=func.now(), log=log))
        self.windows[key], self._learned[key] = limits, True

    async def _behind(self, key: str, counts: list[Window]) -> bool:
        """Whether the provider counted more than the log holds (one read, no lock)."""
        if self._postgres:
            rows = await self._ride(lambda: _pg(self._url, _LOG, {"key": key}), what="a rate-limit log")
        else:
            rows = await self._step(self._log_sqlite, key, what="a rate-limit log")
        return bool(rows) and uncounted(list(rows[0][0]), counts, rows[0][1]) > 0

    def _log_sqlite(self, key: str) -> list[tuple[Any, ...]]:
        with session_scope(self._url) as session:
            log = session.execute(select(RateLimitKey.log).where(RateLimitKey.key == key)).scalar()
        return [] if log is None else [(log, time.time())]

    # -- for the clients -------------------------------------------------------------
    def _made(self) -> bool:
        return all((self._url, key, self._defaults[key], self._configured) in _ready for key in self._keys)

    async def _step(self, fn: Callable[..., T], *args: object, what: str) -> T:
        """A synchronous database step in a thread, riding out an outage."""
        return await ride_out_thread(fn, *args, what=f"{what} ({', '.join(self._keys)})",
                                     budget=self._outage_budget)

    async def _ride(self, call: Callable[[], Awaitable[T]], *, what: str) -> T:
        """A statement on the event loop's connection, riding out an outage."""
        return await ride_out(call, what=f"{what} ({', '.join(self._keys)})", budget=self._outage_budget)

    def _stale_after(self) -> float:
        """How late a request may leave after its moment: half the smallest margin of its
        windows. Later, the one booked ``count`` places behind it might reach the provider first."""
        windows = [w for key in self._keys for w in (self.windows[key] if self._learned.get(key) else PROBE)]
        return min(window_span(s) - s for _, s in windows) / 2

    async def _version_now(self) -> str:
        """``version``, read at most once per ``_RECHECK / 2`` by all the waiters of a process."""
        cached = _versions.get(cache_key := (self._url, *self._keys))
        if cached is not None and time.monotonic() - cached[0] < _RECHECK / 2:
            return cached[1]
        version = await self.version()
        _versions[cache_key] = (time.monotonic(), version)
        return version

    async def permit(self, *, give_back_late: bool = True) -> Permit:
        """Wait until a request may start; its permit (``Permit.keep_fresh`` just before the
        request is written)."""
        waited = 0.0
        while True:
            delay, due, slot, version = await self._book()
            if slot is None:  # probing an unlearned key: ask again soon
                step = min(delay, _RECHECK)
                await self._sleep(step)
                waited += step
                continue
            # Look at the windows while there is time to spare, never near the moment itself: a
            # read then would make the request leave late and crowd the window behind it.
            changed = False
            while delay > 2 * _RECHECK and not changed:
                await self._sleep(_RECHECK)
                waited, delay = waited + _RECHECK, delay - _RECHECK
                changed = await self._version_now() != version
            if changed:  # booked under windows now gone: give the moment back, book again
                await self.cancel(slot)
                continue
            delay = min(delay, due - time.monotonic())
            if delay > 0:
                await self._sleep(delay)
                waited += delay
            permit = Permit(self, slot, due, waited)
            if give_back_late and permit.late():
                # This process was held up past the moment (a busy machine): give the moment
                # back unused and book one that leaves on time. Once only, so that a crowded
                # process still makes progress.
                give_back_late = False
                await self.cancel(slot)
                continue
            return permit

    async def acquire(self) -> float:
        """Wait until a request may start; returns the seconds waited."""
        return (await self.permit()).waited

    async def observe(self, key: str, limits_header: str | None, counts_header: str | None) -> None:
        """Learn from a response's rate-limit headers of ``key``: store the provider's limits
        (unless configured), and add to the log the requests it counted beyond ours (a read,
        and a write only when it did)."""
        limits, counts = self._news(key, limits_header, counts_header)
        if (limits or counts) and not self._made():
            await self._step(self._ensure, what="rate-limit keys")
        if limits:
            await self._step(self._learn, key, limits, what="rate-limit windows")
        if counts and await self._behind(key, counts):
            await self._step(self._push_back, key, counts, what="requests counted elsewhere")


class SharedWindowLimiter(SharedBudget):
    """A budget of one key, with the interface of :class:`core.http.limiter.SlidingWindowPacer`."""

    def __init__(self, url: str, key: str, default_windows: list[Window], *, sleep: Sleep | None = None,
                 configured: bool = False, outage_budget: float = DEFAULT_BUDGET_S) -> None:
        super().__init__(url, {key: default_windows}, sleep=sleep, configured=configured,
                         outage_budget=outage_budget)
        self.key = key

    async def observe(self, limits_header: str | None, counts_header: str | None) -> None:  # type: ignore[override]
        await super().observe(self.key, limits_header, counts_header)
