"""RapidAPI LinkedIn profile client with 429 backoff (API_SHAPES.md section A)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from core.db.outage import DEFAULT_BUDGET_S
from core.errors import MalformedResponseError
from core.http.client import OnSend, ProviderClient, parse_json
from core.http.retry import RetryPolicy, Sleep
from core.profiles.cleaning import validate_urn
from core.profiles.settings import RapidApiSettings


@dataclass(frozen=True)
class FetchResult:
    """A fetched profile: the parsed body, the bytes as received, and what it cost."""

    data: dict[str, Any]
    raw: bytes
    attempts: int
    provider_remaining: int | None
    billed: int = 1  # the 200s among the attempts (an earlier cut-off answer is billed too)


def _remaining(response: httpx.Response) -> int | None:
    value = response.headers.get("x-ratelimit-requests-remaining")
    return int(value) if value and value.isdigit() else None


class RapidApiClient(ProviderClient):
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
        outage_budget: float = DEFAULT_BUDGET_S,
    ) -> None:
        """``limits_url``: the app database; with ``requestsPerSecond`` set, every process on
        that database shares the key's per-second budget (``core.http.shared_limiter``), and
        waits out an outage of that database for ``outage_budget`` seconds
        (``database.outageBudgetSeconds``)."""
        key = settings.key.get_secret_value()
        super().__init__(
            policy=RetryPolicy(settings.rate_limit_max_retries, settings.rate_limit_backoff_ms,
                               settings.rate_limit_backoff_max_ms, settings.transient_error_retries),
            base_url=settings.base_url, timeout=settings.timeout_seconds,
            headers={"x-rapidapi-key": key, "x-rapidapi-host": settings.host},
            transport=transport, sleep=sleep, limits_url=limits_url, max_connections=settings.concurrency,
            outage_budget=outage_budget)
        self._settings = settings
        self._pacer = (self.shared_pacer("rapidapi", key, [(settings.requests_per_second, 1.0)])
                       if settings.requests_per_second else None)

    def quota_exhausted(self, response: httpx.Response, message: str) -> bool:
        return "MONTHLY" in message.upper()

    async def fetch_profile(self, urn: str, *, on_send: OnSend | None = None) -> FetchResult:
        """GET the profile of ``urn``; raises a ProviderError subclass on failure.

        ``on_send`` is awaited before each attempt, once its permit is held and just before the
        request goes out (``ProviderClient.request``): where a caller marks the entry requested."""
        response, attempts, billed = await self.request("GET", self._settings.profile_path, pacers=(self._pacer,),
                                                        params={"username": validate_urn(urn)}, on_send=on_send)
        raw = response.content
        data = parse_json(response, self._settings.profile_path, attempts, billed)
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"expected a JSON object, got {type(data).__name__}", status=200, attempts=attempts, billed=billed
            )
        if set(data) == {"message"}:
            raise MalformedResponseError(
                f"HTTP 200 without a profile: {data['message']}", status=200, attempts=attempts, billed=billed
            )
        return FetchResult(data, raw, attempts, _remaining(response), billed)
