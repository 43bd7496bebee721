"""CoinGecko v3 client (API_SHAPES.md section C): paced per minute, 429-aware."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import httpx

from core.crypto.settings import CoinGeckoSettings
from core.db.outage import DEFAULT_BUDGET_S
from core.errors import MalformedResponseError
from core.http.client import Pacer, ProviderClient, json_or_none
from core.http.retry import RetryPolicy, Sleep, pause

MARKETS_PAGE_MAX = 250
PRICE_IDS_PER_CALL = 100


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


class CoinGeckoClient(ProviderClient):
    """Markets, simple prices and coin details. ``api_calls`` counts every HTTP attempt."""

    def __init__(
        self,
        settings: CoinGeckoSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        limits_url: str | None = None,
        outage_budget: float = DEFAULT_BUDGET_S,
    ) -> None:
        """``limits_url``: the app database; when given, ``callsPerMinute`` is one budget for
        every process using the key (``core.http.shared_limiter``), else per client."""
        key = settings.api_key.get_secret_value()
        super().__init__(
            policy=RetryPolicy(settings.rate_limit_max_retries, settings.rate_limit_backoff_ms,
                               settings.rate_limit_backoff_max_ms, transient_retries=1),
            base_url=settings.base_url.rstrip("/") + "/", headers={settings.key_header: key},
            timeout=settings.timeout_seconds, transport=transport, sleep=sleep, limits_url=limits_url,
            outage_budget=outage_budget)
        self._pacer: Pacer = (self.shared_pacer("coingecko", key, [(settings.calls_per_minute, 60.0)])
                              or _Pacer(settings.calls_per_minute, sleep or pause))

    def error_message(self, response: httpx.Response) -> str:
        body = json_or_none(response)
        if isinstance(body, dict):
            status = body.get("status")
            if isinstance(status, dict) and status.get("error_message"):
                return str(status["error_message"])
        return super().error_message(response)

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.get_json(path.lstrip("/"), params=params, pacers=(self._pacer,))

    async def coins_markets(self, limit: int, vs_currency: str = "usd") -> list[dict[str, Any]]:
        """The top ``limit`` coins by market cap, paging 250 at a time."""
        coins: list[dict[str, Any]] = []
        seen: set[Any] = set()
        page = 1
        while len(coins) < limit:
            per_page = min(MARKETS_PAGE_MAX, limit)
            batch = await self._get("/coins/markets", {
                "vs_currency": vs_currency, "order": "market_cap_desc",
                "per_page": per_page, "page": page})
            if not isinstance(batch, list):
                raise MalformedResponseError(f"/coins/markets: expected a list, got {type(batch).__name__}")
            # Ranks move between the requests for two pages: a coin may show up on both.
            coins.extend(c for c in batch if not (isinstance(c, dict) and c.get("id") in seen))
            seen.update(c.get("id") for c in batch if isinstance(c, dict))
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
