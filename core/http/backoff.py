"""Backoff policy for HTTP 429 and transient errors (pure: no sleeping here)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)


def backoff_seconds(
    retry_index: int, *, base_ms: int, max_ms: int, retry_after: float | None = None
) -> float:
    """Delay before retry number ``retry_index`` (0-based).

    ``Retry-After`` wins when present, capped at ``max_ms``; otherwise exponential from
    ``base_ms`` (1x, 2x, 4x, ...), capped at ``max_ms``.
    """
    cap = max_ms / 1000
    if retry_after is not None:
        return min(retry_after, cap)
    return min(base_ms * (2**retry_index) / 1000, cap)
