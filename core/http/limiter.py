"""Client-side pacing for "count:seconds" rate-limit windows (Riot's X-*-Rate-Limit headers).

``SlidingWindowPacer``, one process's pacer: a sliding log per key; a request may start only
when every window has room, so no interval of ``seconds`` ever holds more than ``count``
requests, whatever alignment the server's own windows have. Limits and counts learned from
response headers replace the configured ones.

``next_slot`` and its helpers: the rule of the budget shared across processes
(``core.http.shared_limiter``, whose SQL computes the same), over a log of at most
``LOG_SIZE`` recent permits. Each window is kept by its own rule (the strictest binds):

* a window of up to ``LOG_SIZE`` requests keeps its *sliding log*: a permit waits until the
  ``count``-th latest one is ``seconds + margin`` old. A short run spends such a budget at
  once (CoinGecko's 30 calls a minute, the 100 per 2 minutes of a Riot development key),
  and a long run still gets the full long-run rate.
* a window of at most ``SHORT_WINDOW`` seconds is besides spent in bursts of at most a tenth of
  its count (80 per second: 8 every 0.104 s). A burst within a second buys a run nothing
  measurable, and arrivals spread over the window keep the provider's count clear of the
  jitter of a bunched burst (a server that answers 80 requests at once counts the last of
  them tens of milliseconds late, by a different amount each time).
* a window of more requests than the log keeps is *paced*: consecutive permits are
  ``(seconds + margin) / count`` apart.

Reducing every key to its strictest long-run spacing would have been one number per key,
but a Riot development key (20 per 1 s, 100 per 120 s) would then make one request every
1.2 s from the start: a run of 100 requests would take two minutes instead of five seconds.

The margin (4 % of the window, at most 0.25 s: a 1-s window is used to 96 %) absorbs
arrival jitter: a request booked for ``t`` reaches the provider a few milliseconds later,
and one late by more than the margin while the request ``count`` places behind it is
punctual would share a window with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Window = tuple[int, float]  # (count, seconds)

LOG_SIZE = 200  # permits logged per key: the row stays under PostgreSQL's 2 kB TOAST threshold
SHORT_WINDOW = 2.0  # windows of this many seconds or fewer are spent in bursts of a tenth of their count
MARGIN_SHARE, MARGIN_CAP = 0.04, 0.25  # margin of a window: 4 % of it, at most 0.25 s
PROBE: list[Window] = [(1, 1.0)]  # until the provider's headers have been seen once


def parse_windows(header: str | None) -> list[Window]:
    """``"20:1,100:120"`` -> ``[(20, 1.0), (100, 120.0)]``; empty or malformed parts are ignored."""
    windows = []
    for part in (header or "").split(","):
        count, _, seconds = part.strip().partition(":")
        if count.isdigit() and seconds.replace(".", "", 1).isdigit() and float(seconds) > 0:
            windows.append((int(count), float(seconds)))
    return windows


class SlidingWindowPacer:
    """Waits before each request so that every window keeps room. One instance per key."""

    def __init__(
        self,
        windows: list[Window],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        margin: float = 0.1,
    ) -> None:
        self.windows = list(windows)
        self._clock = clock
        self._sleep = sleep or asyncio.sleep
        self._margin = margin
        self._log: deque[float] = deque()
        self._lock = asyncio.Lock()

    def _delay(self, now: float) -> float:
        delay = 0.0
        for count, seconds in self.windows:
            horizon = seconds + self._margin  # requests arrive a little later than they leave
            recent = [t for t in self._log if now - t < horizon]
            if len(recent) >= count:
                delay = max(delay, recent[len(recent) - count] + horizon - now)
        return delay

    async def acquire(self) -> float:
        """Wait until a request may start; returns the seconds waited."""
        async with self._lock:
            waited = 0.0
            while (delay := self._delay(self._clock())) > 0:
                await self._sleep(delay)
                waited += delay
            now = self._clock()
            self._log.append(now)
            longest = max((s for _, s in self.windows), default=0) + self._margin
            while self._log and now - self._log[0] > longest:
                self._log.popleft()
            return waited

    def observe(self, limits_header: str | None, counts_header: str | None) -> None:
        """Adopt the server's limits, and its counts when they exceed ours (shared key)."""
        limits = parse_windows(limits_header)
        if limits:
            self.windows = limits
        now = self._clock()
        for used, seconds in parse_windows(counts_header):
            ours = sum(1 for t in self._log if now - t < seconds)
            self._log.extend([now] * max(0, used - ours))


def format_windows(windows: list[Window]) -> str:
    return ",".join(f"{count}:{seconds:g}" for count, seconds in windows)


# -- the shared budget's rule (core.http.shared_limiter's SQL computes the same) ------------
def window_span(seconds: float) -> float:
    """How long a permit counts in a window of ``seconds``: the window plus its margin."""
    return seconds + min(MARGIN_CAP, MARGIN_SHARE * seconds)


def burst(count: int, seconds: float) -> int:
    """The most permits of a window that may go out together: a short window's tenth (at least
    one), one for a window too large to log, else all of them."""
    if count > LOG_SIZE:
        return 1
    return -(-count // 10) if seconds <= SHORT_WINDOW else count


def next_slot(log: list[float], windows: list[Window], now: float) -> float:
    """The earliest moment, not before ``now`` nor before the last permit in ``log`` (sorted,
    possibly in the future), at which one more permit keeps every window."""
    slot = max([now, *log[-1:]])
    for count, seconds in windows:
        span = window_span(seconds)
        if count <= LOG_SIZE and len(log) >= count:  # the sliding log
            slot = max(slot, log[-count] + span)
        if len(log) >= (size := burst(count, seconds)):  # bursts of ``size``, evenly spread
            slot = max(slot, log[-size] + size * span / count)
    return slot


def uncounted(log: list[float], counts: list[Window], now: float) -> int:
    """How many requests the provider counted (``counts``: used per window) beyond the
    permits of ``log`` already sent in the same windows. A window longer than the log
    reaches back is left out: what it holds beyond the log cannot be told."""
    missing = 0
    for used, seconds in counts:
        horizon = now - window_span(seconds)
        if len(log) >= LOG_SIZE and log[0] > horizon:
            continue
        missing = max(missing, used - sum(1 for t in log if horizon < t <= now))
    return missing


def pushed_back(log: list[float], windows: list[Window], missing: int, now: float) -> list[float]:
    """``log`` with ``missing`` requests of someone else's at its tail, after every booking
    (no moment already given to a waiter is invalidated), spaced as the paced windows want."""
    tail = max([now, *log[-1:]])
    gap = max((window_span(s) / c for c, s in windows if c > LOG_SIZE), default=0.0)
    return (log + [tail + i * gap for i in range(missing)])[-LOG_SIZE:]
