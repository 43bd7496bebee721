"""Riot Games API client (API_SHAPES.md section B): routing, pacing from headers, errors.

Every request first waits on two pacers: the application limit of its routing value and
the method limit of (routing value, method). Both start from settings and then follow the
``X-App-Rate-Limit``/``X-Method-Rate-Limit`` headers and their ``-Count`` twins, so a
well-behaved run sees no 429. A 429 is not retried here: jobs stop gracefully on
RateLimitedError (``retry_after``, ``limit_type``) and continue on their next run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from core.db.outage import DEFAULT_BUDGET_S
from core.errors import ConfigError
from core.http.client import ProviderClient, json_or_none
from core.http.limiter import SlidingWindowPacer, parse_windows
from core.http.retry import RetryPolicy, Sleep
from core.http.shared_limiter import SharedBudget, key_fingerprint
from core.riot.settings import RiotSettings

PLATFORM_REGION = {
    "na1": "americas", "br1": "americas", "la1": "americas", "la2": "americas",
    "euw1": "europe", "eun1": "europe", "tr1": "europe", "ru": "europe", "me1": "europe",
    "kr": "asia", "jp1": "asia",
    "oc1": "sea", "sg2": "sea", "tw2": "sea", "vn2": "sea",
}
_DEFAULT_METHOD_LIMIT = "2000:10"

# Pacers are per process, not per client: tasks build clients per batch, the key's
# budget is shared. Keyed by (key fingerprint, routing value[, method]).
_PACERS: dict[tuple[str, ...], SlidingWindowPacer] = {}


def match_region(platform: str) -> str:
    """Regional routing value for match-v5 (sea platforms route to sea)."""
    try:
        return PLATFORM_REGION[platform.lower()]
    except KeyError:
        raise ConfigError(f"unknown platform {platform!r}; known: {', '.join(PLATFORM_REGION)}") from None


def platforms_of_region(platform: str) -> list[str]:
    """Every platform of ``platform``'s match region, ``platform`` first (where a transferred
    summoner may have gone)."""
    region = match_region(platform)
    return [platform.lower(), *(p for p, r in PLATFORM_REGION.items() if r == region and p != platform.lower())]


def account_region(platform: str) -> str:
    """Regional routing value for account-v1, which has no sea cluster (asia serves it)."""
    region = match_region(platform)
    return "asia" if region == "sea" else region


class RiotClient(ProviderClient):
    """account-v1, match-v5, league-v4 and summoner-v4 with header-driven pacing."""

    def __init__(self, settings: RiotSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Sleep | None = None, clock: Any = None, limits_url: str | None = None,
                 outage_budget: float = DEFAULT_BUDGET_S) -> None:
        """``limits_url``: the app database; when given, the key's budget is shared with every
        process using that database (``core.http.shared_limiter``), else it is per process.
        ``outage_budget``: how long the shared budget waits out an outage of that database
        (``database.outageBudgetSeconds``)."""
        super().__init__(
            policy=RetryPolicy(max_rate_limit_retries=0, backoff_ms=500, backoff_max_ms=5000, transient_retries=1),
            headers={"X-Riot-Token": settings.api_key.get_secret_value()}, timeout=settings.timeout_seconds,
            transport=transport, sleep=sleep, limits_url=limits_url, outage_budget=outage_budget)
        self._settings = settings
        self._clock = clock
        self._key_id = key_fingerprint(settings.api_key.get_secret_value())

    def error_message(self, response: httpx.Response) -> str:
        body = json_or_none(response)
        status = body.get("status") if isinstance(body, dict) else None
        return str(status.get("message")) if isinstance(status, dict) else response.text[:200]

    def _pacer(self, *key: str, default: str) -> SlidingWindowPacer:
        full = (self._key_id, *key)
        pacer = _PACERS.get(full)
        if pacer is None:
            kwargs: dict[str, Any] = {}
            if self._clock is not None:
                kwargs["clock"] = self._clock
            if self._sleep is not None:
                kwargs["sleep"] = self._sleep
            pacer = _PACERS[full] = SlidingWindowPacer(parse_windows(default), **kwargs)
        return pacer

    async def _get(self, route: str, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self._settings.base_url_template.format(route=route) + path
        if self._limits_url:  # one budget per key with every process on the app database
            app_key, method_key = f"riot:{self._key_id}:{route}", f"riot:{self._key_id}:{route}:{method}"
            budget = SharedBudget(self._limits_url, {app_key: parse_windows(self._settings.app_rate_limit),
                                                     method_key: parse_windows(_DEFAULT_METHOD_LIMIT)},
                                  sleep=self._sleep, outage_budget=self._outage_budget)

            async def observe(response: httpx.Response) -> None:
                h = response.headers
                await budget.observe(app_key, h.get("x-app-rate-limit"), h.get("x-app-rate-limit-count"))
                await budget.observe(method_key, h.get("x-method-rate-limit"), h.get("x-method-rate-limit-count"))

            return await self.get_json(url, params=params, pacers=(budget,), observe=observe)
        app = self._pacer(route, default=self._settings.app_rate_limit)
        per_method = self._pacer(route, method, default=_DEFAULT_METHOD_LIMIT)

        async def observe_local(response: httpx.Response) -> None:
            app.observe(response.headers.get("x-app-rate-limit"), response.headers.get("x-app-rate-limit-count"))
            per_method.observe(response.headers.get("x-method-rate-limit"),
                               response.headers.get("x-method-rate-limit-count"))

        return await self.get_json(url, params=params, pacers=(app, per_method), observe=observe_local)

    async def account_by_riot_id(self, platform: str, game_name: str, tag_line: str) -> dict[str, Any]:
        path = f"/riot/account/v1/accounts/by-riot-id/{quote(game_name, safe='')}/{quote(tag_line, safe='')}"
        return await self._get(account_region(platform), "account-by-riot-id", path)

    async def account_by_puuid(self, platform: str, puuid: str) -> dict[str, Any]:
        return await self._get(account_region(platform), "account-by-puuid",
                               f"/riot/account/v1/accounts/by-puuid/{quote(puuid, safe='')}")

    async def match_ids(self, platform: str, puuid: str, *, start: int = 0, count: int = 20,
                        queue: int | None = None, type: str | None = None,
                        start_time: int | None = None) -> list[str]:
        if not 0 <= count <= 100:
            raise ValueError(f"count must be within 0..100, got {count}")
        params: dict[str, Any] = {"start": start, "count": count}
        if queue is not None:
            params["queue"] = queue
        if type is not None:  # ranked, normal, tourney, tutorial (match-v5's own filter)
            params["type"] = type
        if start_time is not None:
            params["startTime"] = start_time
        return await self._get(match_region(platform), "match-ids-by-puuid",
                               f"/lol/match/v5/matches/by-puuid/{quote(puuid, safe='')}/ids", params)

    async def match(self, platform: str, match_id: str) -> dict[str, Any]:
        return await self._get(match_region(platform), "match-by-id",
                               f"/lol/match/v5/matches/{quote(match_id, safe='')}")

    async def league_entries(self, platform: str, puuid: str) -> list[dict[str, Any]]:
        return await self._get(platform.lower(), "league-entries-by-puuid",
                               f"/lol/league/v4/entries/by-puuid/{quote(puuid, safe='')}")

    async def summoner(self, platform: str, puuid: str) -> dict[str, Any]:
        return await self._get(platform.lower(), "summoner-by-puuid",
                               f"/lol/summoner/v4/summoners/by-puuid/{quote(puuid, safe='')}")


def reset_pacers() -> None:
    """Forget all pacing state (tests, or after changing keys)."""
    _PACERS.clear()
