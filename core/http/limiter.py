"""Client-side pacing for "count:seconds" rate-limit windows (Riot's X-*-Rate-Limit headers).

A sliding log per key: a request may start only when every window has room, so no
interval of ``seconds`` ever holds more than ``count`` requests, whatever alignment the
server's own windows have. Limits and counts learned from response headers replace the
configured ones, so a key shared with another process is respected too.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Window = tuple[int, float]  # (count, seconds)


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
