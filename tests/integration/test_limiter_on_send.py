"""``on_send`` with the real client and the shared limiter: it runs once the permit is booked
and the connection made, before the request reaches the provider; a permit that went stale
while it ran is given back and taken again, so the request still leaves on a fresh one."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from core.db import session_scope
from core.db.rate_limits import RateLimitKey
from core.http.shared_limiter import key_fingerprint
from core.profiles.client import RapidApiClient
from core.profiles.settings import RapidApiSettings
from tests.conftest import _truncate

KEY = f"rapidapi:{key_fingerprint('sandbox-key')}"


def _log(url: str) -> list[float]:
    with session_scope(url) as session:
        return list(session.execute(select(RateLimitKey.log).where(RateLimitKey.key == KEY)).scalar_one())


async def test_on_send_runs_after_the_permit_and_before_the_request_arrives(pg_url, rapidapi_sandbox):
    _truncate(pg_url)
    rapidapi_sandbox.reset()
    seen: list[tuple[int, int]] = []

    async def on_send() -> None:  # (permits booked, requests the provider has seen)
        seen.append((len(await asyncio.to_thread(_log, pg_url)), rapidapi_sandbox.total))

    settings = RapidApiSettings(baseUrl=rapidapi_sandbox.url, requestsPerSecond=50)
    async with RapidApiClient(settings, limits_url=pg_url) as client:
        for i in range(3):
            await client.fetch_profile(f"ACoAAOnSend{i:03d}", on_send=on_send)
    assert seen == [(1, 0), (2, 1), (3, 2)]
    assert rapidapi_sandbox.total == 3


async def test_a_permit_gone_stale_during_on_send_is_taken_again(pg_url, rapidapi_sandbox):
    _truncate(pg_url)
    rapidapi_sandbox.reset()
    ended: list[float] = []

    async def slow_commit() -> None:  # a mark that took 0.3 s to commit
        await asyncio.sleep(0.3)
        ended.append(time.time())

    settings = RapidApiSettings(baseUrl=rapidapi_sandbox.url, requestsPerSecond=50)
    async with RapidApiClient(settings, limits_url=pg_url) as client:
        await client.fetch_profile("ACoAAStale001", on_send=slow_commit)
    log = _log(pg_url)
    # One permit in the log, booked once the callback was done: the stale one was given back.
    assert len(log) == 1 and log[0] >= ended[0] - 0.01
    assert rapidapi_sandbox.total == 1
