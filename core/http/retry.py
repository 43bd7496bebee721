"""One retry loop for every provider: 429 with Retry-After and capped backoff, 5xx, network."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache

import httpx

from core.errors import (
    AuthError,
    NetworkError,
    NotFoundError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
)
from core.http.backoff import backoff_seconds, parse_retry_after

Sleep = Callable[[float], Awaitable[None]]


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process: building one loads the CA bundle (~20 ms),
    which would otherwise be paid by every client, i.e. by every batch."""
    return httpx.create_ssl_context()


async def pause(seconds: float) -> None:
    """The one place clients wait; tests replace it to mock time."""
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    max_rate_limit_retries: int
    backoff_ms: int
    backoff_max_ms: int
    transient_retries: int = 1


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    policy: RetryPolicy,
    message: Callable[[httpx.Response], str],
    quota_exhausted: Callable[[httpx.Response, str], bool] = lambda r, m: False,
    sleep: Sleep | None = None,
) -> tuple[httpx.Response, int]:
    """Send until a 2xx; returns (response, attempts) or raises a ProviderError subclass.

    429: wait ``Retry-After`` (capped) or exponential backoff, at most
    ``max_rate_limit_retries`` times; a quota-exhausted 429 is raised at once. 401/403 raise
    AuthError, 404 NotFoundError, 5xx and network errors are retried ``transient_retries``
    times. Every attempt is counted.
    """
    wait = sleep or (lambda s: pause(s))
    attempts = rate_limited = transient = 0
    while True:
        attempts += 1
        try:
            response = await send()
        except httpx.TransportError as exc:
            transient += 1
            if transient > policy.transient_retries:
                raise NetworkError(f"network error: {type(exc).__name__}: {exc}".rstrip(": "),
                                   attempts=attempts) from None
            await wait(backoff_seconds(transient - 1, base_ms=policy.backoff_ms,
                                       max_ms=policy.backoff_max_ms))
            continue
        status = response.status_code
        if status < 300:
            return response, attempts
        text = message(response)
        if status == 429:
            if quota_exhausted(response, text):
                raise QuotaExhaustedError(f"provider quota exhausted: {text}", status=429,
                                          attempts=attempts)
            rate_limited += 1
            if rate_limited > policy.max_rate_limit_retries:
                error = RateLimitedError(
                    f"rate limited (HTTP 429) after {policy.max_rate_limit_retries} retries: {text}",
                    status=429, attempts=attempts)
                error.retry_after = parse_retry_after(response.headers.get("retry-after"))
                error.limit_type = response.headers.get("x-rate-limit-type")
                raise error
            await wait(backoff_seconds(
                rate_limited - 1, base_ms=policy.backoff_ms, max_ms=policy.backoff_max_ms,
                retry_after=parse_retry_after(response.headers.get("retry-after"))))
            continue
        if status in (401, 403):
            raise AuthError(f"HTTP {status}: {text}", status=status, attempts=attempts)
        if status == 404:
            raise NotFoundError(f"HTTP 404: {text}", status=404, attempts=attempts)
        if status >= 500:
            transient += 1
            if transient > policy.transient_retries:
                raise ServerError(f"server error HTTP {status}: {text}", status=status,
                                  attempts=attempts)
            await wait(backoff_seconds(transient - 1, base_ms=policy.backoff_ms,
                                       max_ms=policy.backoff_max_ms))
            continue
        raise ProviderError(f"HTTP {status}: {text}", status=status, attempts=attempts)
