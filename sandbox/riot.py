"""Imitation of the Riot Games API (API_SHAPES.md section B) with dev-key rate limits.

Routing values are the first path segment (``/americas/lol/match/v5/...``), so one server
stands in for every regional and platform host: point ``riot.baseUrlTemplate`` at
``http://127.0.0.1:PORT/{route}``. Limits are enforced like Riot's: fixed windows per
routing value (application) and per method, every response carries ``X-App-Rate-Limit``,
``X-App-Rate-Limit-Count``, ``X-Method-Rate-Limit`` and ``X-Method-Rate-Limit-Count``; a
429 adds ``Retry-After`` and ``X-Rate-Limit-Type``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

CHAMPIONS = ["Ahri", "Garen", "Jinx", "LeeSin", "Lux", "Thresh", "Yasuo", "Ezreal", "Darius", "Leona"]


class RiotKnobs(BaseModel):
    api_key: str = "RGAPI-sandbox"
    app_limits: str = "20:1,100:120"
    method_limits: str = "2000:10"
    latency_ms: float = 0
    force_429_after: int | None = None  # total requests after which every call gets 429
    banned_puuids: list[str] = Field(default_factory=list)
    smurf_every: int = 7  # every Nth generated player plays like a smurf
    # puuid -> its platform: summoner-v4 answers 404 and league-v4 [] on any other platform
    # host, match-v5 lists its matches only on that platform's region (others: any host).
    home_platforms: dict[str, str] = Field(default_factory=dict)
    server_error_puuids: list[str] = Field(default_factory=list)  # every call about them: 500
    revoke_key_after: int | None = None  # total requests after which the key is refused (403)


def _windows(spec: str) -> list[tuple[int, float]]:
    return [(int(c), float(s)) for c, s in (p.split(":") for p in spec.split(",") if p)]


class _FixedWindows:
    """Riot-style fixed windows: each starts at the first request after the previous ended."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.windows = [[count, seconds, 0.0, 0] for count, seconds in _windows(spec)]

    def hit(self, now: float) -> tuple[bool, float]:
        """Count a request; returns (allowed, retry_after seconds)."""
        retry = 0.0
        for w in self.windows:
            if now - w[2] >= w[1]:
                w[2], w[3] = now, 0
        for count, seconds, start, used in self.windows:
            if used >= count:
                retry = max(retry, start + seconds - now)
        if retry > 0:
            return False, retry
        for w in self.windows:
            w[3] += 1
        return True, 0.0

    def counts(self) -> str:
        return ",".join(f"{used}:{int(seconds)}" for _, seconds, _, used in self.windows)


def plays_like_smurf(puuid: str, every: int = 7) -> bool:
    """Whether the sandbox makes this player a smurf (deterministic)."""
    return int(hashlib.md5(puuid.encode()).hexdigest(), 16) % every == 0


def level_of(puuid: str, every: int = 7) -> int:
    """The player's account level, the same in match-v5 and summoner-v4 (smurfs: 30-59)."""
    seed = int(hashlib.md5(puuid.encode()).hexdigest()[:3], 16)
    return 30 + seed % 30 if plays_like_smurf(puuid, every) else 100 + seed % 400


# The sandbox's own copy of Riot's routing (it imitates the API, not our client).
REGION_OF = {"na1": "americas", "br1": "americas", "la1": "americas", "la2": "americas",
             "euw1": "europe", "eun1": "europe", "tr1": "europe", "ru": "europe", "me1": "europe",
             "kr": "asia", "jp1": "asia", "oc1": "sea", "sg2": "sea", "tw2": "sea", "vn2": "sea"}


def puuid_of(name: str) -> str:
    """A 78-character puuid, deterministic per name."""
    digest = hashlib.sha512(name.encode()).hexdigest()
    return (digest + digest)[:78]


class RiotSandbox:
    def __init__(self, knobs: RiotKnobs | None = None) -> None:
        self.initial = knobs or RiotKnobs()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.knobs = self.initial.model_copy(deep=True)
        self._app: dict[str, _FixedWindows] = {}
        self._method: dict[tuple[str, str], _FixedWindows] = {}
        self.statuses: Counter[int] = Counter()
        self.requests: Counter[str] = Counter()  # answered requests per path: nothing fetched twice
        self.focus: dict[str, str] = {}  # match id -> the player whose history listed it
        self.match_id_types: Counter[str | None] = Counter()  # the ``type`` filter of each id list
        self.total = 0

    def update_knobs(self, **changes: Any) -> RiotKnobs:
        self.knobs = RiotKnobs.model_validate(self.knobs.model_dump() | changes)
        self._app.clear()
        self._method.clear()
        return self.knobs

    def _error(self, status: int, message: str, headers: dict[str, str]) -> JSONResponse:
        self.statuses[status] += 1
        return JSONResponse({"status": {"message": message, "status_code": status}}, status, headers=headers)

    async def gate(self, request: Request, route: str, method: str) -> tuple[JSONResponse | None, dict[str, str]]:
        k = self.knobs
        self.total += 1
        if k.latency_ms:
            await asyncio.sleep(k.latency_ms / 1000)
        revoked = k.revoke_key_after is not None and self.total > k.revoke_key_after
        if revoked or request.headers.get("x-riot-token") != k.api_key:
            return self._error(403, "Forbidden", {}), {}
        now = time.monotonic()
        app = self._app.setdefault(route, _FixedWindows(k.app_limits))
        meth = self._method.setdefault((route, method), _FixedWindows(k.method_limits))
        app_ok, app_retry = app.hit(now)
        meth_ok, meth_retry = meth.hit(now) if app_ok else (True, 0.0)
        headers = {"X-App-Rate-Limit": k.app_limits, "X-App-Rate-Limit-Count": app.counts(),
                   "X-Method-Rate-Limit": k.method_limits, "X-Method-Rate-Limit-Count": meth.counts()}
        forced = k.force_429_after is not None and self.total > k.force_429_after
        if forced or not app_ok or not meth_ok:
            kind = "application" if (forced or not app_ok) else "method"
            retry = max(1, int(app_retry or meth_retry or 10) + 1)
            return self._error(429, "Rate limit exceeded", headers | {
                "Retry-After": str(retry), "X-Rate-Limit-Type": kind}), headers
        self.statuses[200] += 1
        self.requests[request.url.path] += 1
        return None, headers


def _player_stats(rng: random.Random, smurf: bool) -> dict[str, Any]:
    kills = rng.randint(6, 16) if smurf else rng.randint(0, 10)
    deaths = rng.randint(0, 3) if smurf else rng.randint(1, 10)
    return {"kills": kills, "deaths": deaths, "assists": rng.randint(2, 15),
            "totalMinionsKilled": rng.randint(200, 300) if smurf else rng.randint(80, 220),
            "neutralMinionsKilled": rng.randint(0, 40), "goldEarned": rng.randint(7000, 16000),
            "visionScore": rng.randint(5, 60)}


def generate_match(match_id: str, focus: str, smurfs: set[str], smurf_every: int = 7) -> dict[str, Any]:
    """A match-v5 body; ``focus`` is one of the ten participants, the platform is the id's prefix."""
    rng = random.Random(match_id)
    others = [puuid_of(f"{match_id}-p{i}") for i in range(9)]
    puuids = [focus, *others]
    rng.shuffle(puuids)
    duration = rng.randint(1300, 2300)
    focus_team = 100 if puuids.index(focus) < 5 else 200
    focus_smurf = focus in smurfs
    winner = focus_team if (rng.random() < (0.85 if focus_smurf else 0.5)) else (300 - focus_team)
    participants = []
    for i, puuid in enumerate(puuids):
        team = 100 if i < 5 else 200
        stats = _player_stats(rng, puuid in smurfs)
        kda = (stats["kills"] + stats["assists"]) / max(stats["deaths"], 1)
        participants.append({
            "puuid": puuid, "riotIdGameName": f"Player{puuid[:6]}", "riotIdTagline": "NA1",
            "summonerLevel": level_of(puuid, smurf_every),
            "championName": rng.choice(CHAMPIONS), "teamId": team,
            "teamPosition": ["TOP", "JUNGLE", "MIDDLE", "BOTTOM", "UTILITY"][i % 5],
            **stats, "win": team == winner, "timePlayed": duration,
            "challenges": {"kda": round(kda, 2), "killParticipation": round(rng.uniform(0.3, 0.8), 2)},
        })
    created = 1_760_000_000_000 + int(hashlib.md5(match_id.encode()).hexdigest()[:6], 16) * 1000
    return {"metadata": {"matchId": match_id, "participants": puuids},
            "info": {"gameCreation": created, "gameDuration": duration, "gameEndTimestamp": created + duration * 1000,
                     "gameMode": "CLASSIC", "queueId": 420, "platformId": match_id.split("_")[0], "participants": participants,
                     "teams": [{"teamId": 100, "win": winner == 100}, {"teamId": 200, "win": winner == 200}]}}


def create_app(sandbox: RiotSandbox | None = None) -> FastAPI:
    sb = sandbox or RiotSandbox()
    app = FastAPI(title="Riot API sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = sb
    smurfs: set[str] = set()

    def is_smurf(puuid: str) -> bool:
        flagged = plays_like_smurf(puuid, sb.knobs.smurf_every)
        if flagged:
            smurfs.add(puuid)
        return flagged

    async def reply(request: Request, route: str, method: str, body: Any, status: int = 200) -> JSONResponse:
        refused, headers = await sb.gate(request, route, method)
        if refused is not None:
            return refused
        if any(p in request.url.path for p in sb.knobs.server_error_puuids):
            return sb._error(500, "Internal server error", headers)
        if status != 200:
            return sb._error(status, body, headers)
        return JSONResponse(body, headers=headers)

    def elsewhere(puuid: str, route: str) -> bool:
        """Whether the player lives on another platform (or region) than ``route``."""
        home = sb.knobs.home_platforms.get(puuid)
        return home is not None and route not in (home, REGION_OF.get(home))

    @app.get("/{route}/riot/account/v1/accounts/by-riot-id/{name}/{tag}")
    async def by_riot_id(request: Request, route: str, name: str, tag: str) -> JSONResponse:
        puuid = puuid_of(f"{name}#{tag}")
        if puuid in sb.knobs.banned_puuids:
            return await reply(request, route, "account-by-riot-id", "Data not found - No results found", 404)
        return await reply(request, route, "account-by-riot-id", {"puuid": puuid, "gameName": name, "tagLine": tag})

    @app.get("/{route}/riot/account/v1/accounts/by-puuid/{puuid}")
    async def by_puuid(request: Request, route: str, puuid: str) -> JSONResponse:
        if puuid in sb.knobs.banned_puuids:
            return await reply(request, route, "account-by-puuid", "Data not found - No results found", 404)
        return await reply(request, route, "account-by-puuid",
                           {"puuid": puuid, "gameName": f"Player{puuid[:6]}", "tagLine": "NA1"})

    @app.get("/{route}/lol/match/v5/matches/by-puuid/{puuid}/ids")
    async def match_ids(request: Request, route: str, puuid: str, start: int = 0, count: int = 20) -> JSONResponse:
        if not 0 <= count <= 100:
            return await reply(request, route, "match-ids-by-puuid", "Bad request - count", 400)
        sb.match_id_types[request.query_params.get("type")] += 1  # every generated game is ranked solo
        if elsewhere(puuid, route):
            return await reply(request, route, "match-ids-by-puuid", [])
        total = 10 + int(hashlib.md5(puuid.encode()).hexdigest()[:2], 16) % 60
        prefix = sb.knobs.home_platforms.get(puuid, "na1").upper()
        ids = [f"{prefix}_{5_000_000_000 + int(hashlib.md5(f'{puuid}{i}'.encode()).hexdigest()[:8], 16)}"
               for i in range(total)]
        for match_id in ids:
            sb.focus.setdefault(match_id, puuid)
        return await reply(request, route, "match-ids-by-puuid", ids[start : start + count])

    @app.get("/{route}/lol/match/v5/matches/{match_id}")
    async def match(request: Request, route: str, match_id: str) -> JSONResponse:
        focus = sb.focus.get(match_id) or puuid_of(f"{match_id}-focus")
        is_smurf(focus)
        return await reply(request, route, "match-by-id",
                           generate_match(match_id, focus, smurfs, sb.knobs.smurf_every))

    @app.get("/{route}/lol/league/v4/entries/by-puuid/{puuid}")
    async def league(request: Request, route: str, puuid: str) -> JSONResponse:
        if puuid in sb.knobs.banned_puuids or elsewhere(puuid, route):
            return await reply(request, route, "league-entries-by-puuid", [])
        # Stable per player, and consistent with summoner-v4 and match-v5: a smurf is a
        # low-level account in Diamond winning most games.
        rng = random.Random(puuid)
        smurf = is_smurf(puuid)
        tier = "DIAMOND" if smurf else rng.choice(["IRON", "BRONZE", "SILVER", "GOLD", "PLATINUM"])
        games = rng.randint(20, 60) if smurf else rng.randint(20, 400)
        wins = round(games * (0.8 if smurf else rng.uniform(0.45, 0.55)))
        return await reply(request, route, "league-entries-by-puuid", [{
            "leagueId": hashlib.md5(tier.encode()).hexdigest()[:8], "queueType": "RANKED_SOLO_5x5",
            "tier": tier, "rank": rng.choice(["I", "II", "III", "IV"]), "puuid": puuid,
            "leaguePoints": rng.randint(0, 99), "wins": wins, "losses": games - wins,
            "veteran": False, "inactive": False, "freshBlood": False, "hotStreak": smurf}])

    @app.get("/{route}/lol/summoner/v4/summoners/by-puuid/{puuid}")
    async def summoner(request: Request, route: str, puuid: str) -> JSONResponse:
        if puuid in sb.knobs.banned_puuids or elsewhere(puuid, route):
            return await reply(request, route, "summoner-by-puuid", "Data not found - summoner not found", 404)
        is_smurf(puuid)
        return await reply(request, route, "summoner-by-puuid", {
            "puuid": puuid, "profileIconId": 4568, "revisionDate": 1_763_000_000_000,
            "summonerLevel": level_of(puuid, sb.knobs.smurf_every)})

    return app
