"""RapidAPI LinkedIn profile client with 429 backoff (API_SHAPES.md section A)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import MalformedResponseError
from core.http.retry import RetryPolicy, Sleep, send_with_retries, shared_ssl_context
from core.http.shared_limiter import SharedWindowLimiter, key_fingerprint
from core.profiles.cleaning import validate_urn
from core.profiles.settings import RapidApiSettings


@dataclass(frozen=True)
class FetchResult:
    """A fetched profile: the parsed body, the bytes as received, and what it cost."""

    data: dict[str, Any]
    raw: bytes
    attempts: int
    provider_remaining: int | None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return response.text[:200]


def _remaining(response: httpx.Response) -> int | None:
    value = response.headers.get("x-ratelimit-requests-remaining")
    return int(value) if value and value.isdigit() else None


class RapidApiClient:
    """Fetches LinkedIn profiles by URN; retries 429s with capped exponential backoff.

    Every HTTP attempt is counted (``attempts`` on results and errors). 401/403 raise
    AuthError; a MONTHLY-quota 429 raises QuotaExhaustedError at once, since waiting cannot
    help; other 429s are retried ``rate_limit_max_retries`` times; 5xx and network errors
    ``transient_error_retries`` times.
    """

    def __init__(
        self,
        settings: RapidApiSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        limits_url: str | None = None,
    ) -> None:
        """``limits_url``: the app database; with ``requestsPerSecond`` set, every process on
        that database shares the key's per-second budget (``core.http.shared_limiter``)."""
        self._settings = settings
        self._sleep = sleep
        self._limiter = None
        if limits_url and settings.requests_per_second:
            key = "rapidapi:" + key_fingerprint(settings.key.get_secret_value())
            self._limiter = SharedWindowLimiter(limits_url, key, [(settings.requests_per_second, 1.0)],
                                                sleep=sleep, configured=True)
        self._policy = RetryPolicy(settings.rate_limit_max_retries, settings.rate_limit_backoff_ms,
                                   settings.rate_limit_backoff_max_ms, settings.transient_error_retries)
        self._transport = transport
        self._http: httpx.AsyncClient | None = None  # built on the first request (see _client)

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client, built on first use: its TLS context costs tens of milliseconds,
        which a run that finds nothing to fetch should not pay."""
        if self._http is None:
            settings = self._settings
            self._http = httpx.AsyncClient(
                base_url=settings.base_url,
                headers={
                    "x-rapidapi-key": settings.key.get_secret_value(),
                    "x-rapidapi-host": settings.host,
                    "accept": "application/json",
                },
                timeout=settings.timeout_seconds,
                transport=self._transport,
                verify=shared_ssl_context(),
                # As many connections as requests may be in flight: every idle connection more is
                # one more liveness check on each request the pool assigns.
                limits=httpx.Limits(max_connections=settings.concurrency),
            )
        return self._http

    async def __aenter__(self) -> RapidApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def fetch_profile(self, urn: str) -> FetchResult:
        """GET the profile of ``urn``; raises a ProviderError subclass on failure."""
        params = {"username": validate_urn(urn)}
        async def send() -> httpx.Response:
            if self._limiter is not None:
                await self._limiter.acquire()
            return await self._client().get(self._settings.profile_path, params=params)

        response, attempts = await send_with_retries(
            send,
            policy=self._policy, message=_message, sleep=self._sleep,
            quota_exhausted=lambda _r, text: "MONTHLY" in text.upper(),
        )
        raw = response.content
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedResponseError(
                f"malformed JSON in HTTP 200 body: {exc}", status=200, attempts=attempts
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"expected a JSON object, got {type(data).__name__}", status=200, attempts=attempts
            )
        if set(data) == {"message"}:
            raise MalformedResponseError(
                f"HTTP 200 without a profile: {data['message']}", status=200, attempts=attempts
            )
        return FetchResult(data, raw, attempts, _remaining(response))
