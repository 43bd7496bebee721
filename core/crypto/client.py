"""CoinGecko v3 client (API_SHAPES.md section C): paced per minute, 429-aware."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import httpx

from core.crypto.settings import CoinGeckoSettings
from core.errors import MalformedResponseError
from core.http.retry import RetryPolicy, Sleep, pause, send_with_retries, shared_ssl_context
from core.http.shared_limiter import SharedWindowLimiter, key_fingerprint

MARKETS_PAGE_MAX = 250
PRICE_IDS_PER_CALL = 100


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and status.get("error_message"):
            return str(status["error_message"])
        if body.get("error"):
            return str(body["error"])
    return response.text[:200]


class _Pacer:
    """Spaces request starts at least ``60 / per_minute`` seconds apart (shared by all callers)."""

    def __init__(self, per_minute: int, sleep: Sleep) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._sleep = sleep

    async def acquire(self) -> float:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await self._sleep(self._next - now)
            waited = max(0.0, self._next - now)
            self._next = max(now, self._next) + self._interval
            return waited


class CoinGeckoClient:
    """Markets, simple prices and coin details. ``api_calls`` counts every HTTP attempt."""

    def __init__(
        self,
        settings: CoinGeckoSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        limits_url: str | None = None,
    ) -> None:
        """``limits_url``: the app database; when given, ``callsPerMinute`` is one budget for
        every process using the key (``core.http.shared_limiter``), else per client."""
        self._sleep = sleep
        self._pacer: _Pacer | SharedWindowLimiter = _Pacer(settings.calls_per_minute, sleep or pause)
        if limits_url:
            key = "coingecko:" + key_fingerprint(settings.api_key.get_secret_value())
            self._pacer = SharedWindowLimiter(limits_url, key, [(settings.calls_per_minute, 60.0)],
                                              sleep=sleep, configured=True)
        self._policy = RetryPolicy(settings.rate_limit_max_retries, settings.rate_limit_backoff_ms,
                                   settings.rate_limit_backoff_max_ms, transient_retries=1)
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers={settings.key_header: settings.api_key.get_secret_value(),
                     "accept": "application/json"},
            timeout=settings.timeout_seconds,
            transport=transport,
            verify=shared_ssl_context(),
        )
        self.api_calls = 0

    async def __aenter__(self) -> CoinGeckoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        async def send() -> httpx.Response:
            await self._pacer.acquire()
            self.api_calls += 1
            return await self._http.get(path.lstrip("/"), params=params)

        response, _ = await send_with_retries(send, policy=self._policy, message=_message,
                                              sleep=self._sleep)
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedResponseError(f"malformed JSON from {path}: {exc}", status=200) from None

    async def coins_markets(self, limit: int, vs_currency: str = "usd") -> list[dict[str, Any]]:
        """The top ``limit`` coins by market cap, paging 250 at a time."""
        coins: list[dict[str, Any]] = []
        page = 1
        while len(coins) < limit:
            per_page = min(MARKETS_PAGE_MAX, limit)
            batch = await self._get("/coins/markets", {
                "vs_currency": vs_currency, "order": "market_cap_desc",
                "per_page": per_page, "page": page})
            if not isinstance(batch, list):
                raise MalformedResponseError(f"/coins/markets: expected a list, got {type(batch).__name__}")
            coins.extend(batch)
            if len(batch) < per_page:
                break
            page += 1
        return coins[:limit]

    async def simple_price(self, ids: list[str], vs_currency: str = "usd") -> dict[str, dict[str, Any]]:
        """Current prices by CoinGecko id; unknown ids are simply absent."""
        prices: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), PRICE_IDS_PER_CALL):
            chunk = ids[start : start + PRICE_IDS_PER_CALL]
            body = await self._get("/simple/price", {
                "ids": ",".join(chunk), "vs_currencies": vs_currency,
                "include_last_updated_at": "true"})
            if not isinstance(body, dict):
                raise MalformedResponseError("/simple/price: expected an object")
            prices.update(body)
        return prices

    async def coin(self, coin_id: str) -> dict[str, Any]:
        """``/coins/{id}`` without the heavy sections (platforms are what we need)."""
        body = await self._get(f"/coins/{quote(coin_id, safe='')}", {
            "localization": "false", "tickers": "false", "market_data": "false",
            "community_data": "false", "developer_data": "false", "sparkline": "false"})
        if not isinstance(body, dict):
            raise MalformedResponseError(f"/coins/{coin_id}: expected an object")
        return body
