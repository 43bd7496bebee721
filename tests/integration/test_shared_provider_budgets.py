"""RapidAPI's per-second plan limit and CoinGecko's calls per minute: one budget per key for
every client on the app database (each client here stands for a worker process: clients
share nothing but the database)."""

from __future__ import annotations

import asyncio

from core.crypto.client import CoinGeckoClient
from core.crypto.settings import CoinGeckoSettings
from core.http.shared_limiter import SharedWindowLimiter
from core.profiles.client import RapidApiClient
from core.profiles.settings import RapidApiSettings
from tests.conftest import _truncate


async def test_two_rapidapi_clients_share_the_plans_per_second_limit(pg_url, rapidapi_sandbox):
    _truncate(pg_url)
    rapidapi_sandbox.reset()
    settings = RapidApiSettings(baseUrl=rapidapi_sandbox.url, requestsPerSecond=4, concurrency=10)
    async with RapidApiClient(settings, limits_url=pg_url) as a, RapidApiClient(settings, limits_url=pg_url) as b:
        await asyncio.gather(*(c.fetch_profile(f"ACoAABudget{i:03d}") for i in range(8) for c in (a, b)))
    stats = rapidapi_sandbox.stats()
    assert stats["statuses"] == {200: 16}
    assert stats["max_requests_per_second"] <= 4, stats  # the sandbox measures arrivals per second


async def test_coingecko_calls_per_minute_are_one_budget_for_every_client(pg_url, coingecko_sandbox):
    _truncate(pg_url)
    settings = CoinGeckoSettings(baseUrl=coingecko_sandbox.url, callsPerMinute=3)
    async with CoinGeckoClient(settings, limits_url=pg_url) as a, CoinGeckoClient(settings, limits_url=pg_url) as b:
        await a.coins_markets(2)
        await b.coins_markets(2)
        await a.coins_markets(2)
    # A fourth call, from any process, must wait for the minute to pass.
    key = next(iter(a._pacer.windows))  # type: ignore[union-attr]
    assert (await SharedWindowLimiter(pg_url, key, [(3, 60.0)], configured=True).reserve())[0] > 50
