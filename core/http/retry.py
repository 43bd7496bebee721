"""One retry loop for every provider: 429 with Retry-After and capped backoff, 5xx, network."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

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


class AnswerCut(Exception):
    """The provider answered (``status``) but the body did not arrive whole: a dropped
    connection mid-body. A 200 is billed all the same."""

    def __init__(self, status: int, cause: BaseException) -> None:
        super().__init__(f"HTTP {status} answer cut off: {type(cause).__name__}: {cause}".rstrip(": "))
        self.status = status


class Sent(NamedTuple):
    """A 2xx answer, the attempts it took, and how many of them the provider bills (its 200s,
    a cut-off one included)."""

    response: httpx.Response
    attempts: int
    billed: int


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
) -> Sent:
    """Send until a 2xx; returns the answer, its attempts and billed count, or raises a
    ProviderError subclass (``billed`` on it too).

    429: wait ``Retry-After`` (capped) or exponential backoff, at most
    ``max_rate_limit_retries`` times; a quota-exhausted 429 is raised at once. 401/403 raise
    AuthError, 404 NotFoundError, 5xx and network errors are retried ``transient_retries``
    times, and so is an answer whose body was cut off (``AnswerCut``: billed when it was a 200,
    so a cut 200 retried once is billed twice). Every attempt is counted.
    """
    wait = sleep or (lambda s: pause(s))
    attempts = rate_limited = transient = billed = 0
    while True:
        attempts += 1
        try:
            response = await send()
        except (httpx.TransportError, AnswerCut) as exc:
            billed += isinstance(exc, AnswerCut) and exc.status == 200
            transient += 1
            if transient > policy.transient_retries:
                what = str(exc) if isinstance(exc, AnswerCut) else f"{type(exc).__name__}: {exc}".rstrip(": ")
                raise NetworkError(f"network error: {what}", attempts=attempts, billed=billed) from None
            await wait(backoff_seconds(transient - 1, base_ms=policy.backoff_ms,
                                       max_ms=policy.backoff_max_ms))
            continue
        status = response.status_code
        billed += status == 200
        if status < 300:
            return Sent(response, attempts, billed)
        text = message(response)
        if status == 429:
            if quota_exhausted(response, text):
                raise QuotaExhaustedError(f"provider quota exhausted: {text}", status=429,
                                          attempts=attempts, billed=billed)
            rate_limited += 1
            if rate_limited > policy.max_rate_limit_retries:
                error = RateLimitedError(
                    f"rate limited (HTTP 429) after {policy.max_rate_limit_retries} retries: {text}",
                    status=429, attempts=attempts, billed=billed)
                error.retry_after = parse_retry_after(response.headers.get("retry-after"))
                error.limit_type = response.headers.get("x-rate-limit-type")
                raise error
            await wait(backoff_seconds(
                rate_limited - 1, base_ms=policy.backoff_ms, max_ms=policy.backoff_max_ms,
                retry_after=parse_retry_after(response.headers.get("retry-after"))))
            continue
        if status in (401, 403):
            raise AuthError(f"HTTP {status}: {text}", status=status, attempts=attempts, billed=billed)
        if status == 404:
            raise NotFoundError(f"HTTP 404: {text}", status=404, attempts=attempts, billed=billed)
        if status >= 500:
            transient += 1
            if transient > policy.transient_retries:
                raise ServerError(f"server error HTTP {status}: {text}", status=status,
                                  attempts=attempts, billed=billed)
            await wait(backoff_seconds(transient - 1, base_ms=policy.backoff_ms,
                                       max_ms=policy.backoff_max_ms))
            continue
        raise ProviderError(f"HTTP {status}: {text}", status=status, attempts=attempts, billed=billed)
