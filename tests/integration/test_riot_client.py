"""The Riot client against the Riot sandbox: pacing from headers, routing, 429 and 403."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.errors import AuthError, ConfigError, RateLimitedError
from core.riot.client import RiotClient, account_region, match_region, reset_pacers
from core.riot.settings import RiotSettings
from sandbox.riot import RiotKnobs, RiotSandbox, create_app
from sandbox.server import start_in_thread


@pytest.fixture
def riot():
    reset_pacers()
    sandbox = RiotSandbox(RiotKnobs(app_limits="5:1,12:3"))
    with start_in_thread(create_app(sandbox)) as server:
        settings = RiotSettings(apiKey="RGAPI-sandbox", baseUrlTemplate=server.url + "/{route}")
        yield sandbox, settings
    reset_pacers()


def test_routing_values():
    assert (match_region("na1"), match_region("EUW1"), match_region("oc1")) == ("americas", "europe", "sea")
    assert account_region("oc1") == "asia" and account_region("kr") == "asia"
    with pytest.raises(ConfigError, match="unknown platform 'xx1'"):
        match_region("xx1")


async def test_pacing_from_headers_keeps_every_window_without_a_429(riot):
    sandbox, settings = riot
    async with RiotClient(settings) as client:
        ids = await client.match_ids("na1", "p" * 78, count=30)
        t0 = time.monotonic()
        matches = await asyncio.gather(*(client.match("na1", m) for m in ids[:29]))
        elapsed = time.monotonic() - t0
    assert len(matches) == 29 and matches[0]["metadata"]["matchId"] == ids[0]
    assert len(matches[0]["info"]["participants"]) == 10
    assert sandbox.statuses[429] == 0 and client.api_calls == 30
    # 30 calls under 12 per 3 s: the last batch cannot start before 6 s
    assert elapsed >= 5.9 and client.waited_seconds > 0


async def test_a_429_is_raised_with_its_retry_after_and_type(riot):
    sandbox, settings = riot
    sandbox.update_knobs(force_429_after=1)
    async with RiotClient(settings) as client:
        await client.summoner("na1", "p" * 78)
        with pytest.raises(RateLimitedError) as info:
            await client.league_entries("na1", "p" * 78)
    assert info.value.retry_after and info.value.retry_after >= 1
    assert info.value.limit_type == "application" and client.api_calls == 2


async def test_a_bad_key_is_fatal(riot):
    _, settings = riot
    wrong = RiotSettings(apiKey="RGAPI-wrong", baseUrlTemplate=settings.base_url_template)
    async with RiotClient(wrong) as client:
        with pytest.raises(AuthError, match="403"):
            await client.account_by_riot_id("na1", "Some Player", "NA1")
