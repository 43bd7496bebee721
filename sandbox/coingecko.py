"""Imitation of CoinGecko v3 (API_SHAPES.md section C): four endpoints, keys, per-minute 429s."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter, deque
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

RATE_LIMIT_BODY = {"status": {"error_code": 429, "error_message": (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits.")}}
_REAL = [  # (id, symbol, name, platforms) — a few well-known coins, the rest generated
    ("bitcoin", "btc", "Bitcoin", {"": ""}),
    ("ethereum", "eth", "Ethereum", {"": ""}),
    ("tether", "usdt", "Tether", {"ethereum": "0xdAC17F958D2ee523a2206206994597C13D831ec7",
                                  "tron": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"}),
    ("usd-coin", "usdc", "USDC", {"ethereum": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                                  "solana": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"}),
    ("solana", "sol", "Solana", {"": ""}),
    ("chainlink", "link", "Chainlink", {"ethereum": "0x514910771AF9Ca656af840dff83E8264EcF986CA"}),
]


class CoinGeckoKnobs(BaseModel):
    demo_keys: list[str] = Field(default_factory=lambda: ["sandbox-cg-key"])
    pro_keys: list[str] = Field(default_factory=lambda: ["sandbox-cg-pro-key"])
    per_minute_limit: int = 0  # 0 = off; the real demo plan allows about 30
    retry_after_seconds: int | None = 1
    rate_limit_next: int = 0  # the next N requests get 429, whatever the rate
    latency_ms: float = 0
    coin_count: int = 300
    missing_ids: list[str] = Field(default_factory=list)
    rate_limit_ids: list[str] = Field(default_factory=list)  # /coins/{id} of these: always 429 (+ retry-after)
    server_error_ids: list[str] = Field(default_factory=list)  # /coins/{id} of these: always 500
    revoke_key_after: int | None = None  # total requests after which every key is refused (401)


def _rng(key: str) -> random.Random:
    return random.Random(hashlib.sha256(key.encode()).digest())


def build_universe(count: int) -> list[dict[str, Any]]:
    """Deterministic coins ordered by market cap, with the real API's nullable fields."""
    coins = []
    for i in range(count):
        if i < len(_REAL):
            coin_id, symbol, name, platforms = _REAL[i]
        else:
            rng = _rng(f"coin-{i}")
            coin_id, symbol, name = f"token-{i}", f"tk{i}", f"Token {i}"
            platforms = {"": ""} if rng.random() < 0.3 else {
                rng.choice(["ethereum", "binance-smart-chain", "polygon-pos", "arbitrum-one"]):
                    "0x" + hashlib.sha1(coin_id.encode()).hexdigest()[:40].upper()}
        rng = _rng(coin_id)
        price = round(60000 / (i + 1) ** 1.7 * rng.uniform(0.8, 1.2), 8)
        supply = rng.uniform(1e6, 1e10)
        unranked = i >= count - 5  # the tail has no rank, like fresh listings
        coins.append({
            "id": coin_id, "symbol": symbol, "name": name,
            "image": f"https://assets.coingecko.com/coins/images/{i + 1}/large/{coin_id}.png",
            "current_price": price, "market_cap": round(price * supply, 2),
            "market_cap_rank": None if unranked else i + 1,
            "fully_diluted_valuation": None if rng.random() < 0.3 else round(price * supply * 1.2, 2),
            "total_volume": round(price * supply * 0.05, 2),
            "high_24h": round(price * 1.03, 8), "low_24h": round(price * 0.97, 8),
            "price_change_percentage_24h": round(rng.uniform(-8, 8), 4),
            "circulating_supply": supply,
            "total_supply": None if rng.random() < 0.2 else supply * 1.1,
            "max_supply": None if rng.random() < 0.5 else supply * 2,
            "ath": price * 2, "atl": price / 10, "roi": None,
            "last_updated": "2026-11-23T00:00:00.000Z",
            "_platforms": platforms,
        })
    return coins


class CoinGeckoSandbox:
    def __init__(self, knobs: CoinGeckoKnobs | None = None) -> None:
        self.initial = knobs or CoinGeckoKnobs()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.knobs = self.initial.model_copy(deep=True)
        self.universe = build_universe(self.knobs.coin_count)
        self.by_id = {c["id"]: c for c in self.universe}
        self._window: deque[float] = deque()
        self.statuses: Counter[int] = Counter()
        self.total = 0

    def update_knobs(self, **changes: Any) -> CoinGeckoKnobs:
        self.knobs = CoinGeckoKnobs.model_validate(self.knobs.model_dump() | changes)
        return self.knobs

    def stats(self) -> dict[str, Any]:
        return {"total_requests": self.total, "statuses": dict(self.statuses)}

    def _reply(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        self.statuses[status] += 1
        return JSONResponse(body, status_code=status, headers=headers)

    async def gate(self, request: Request) -> Response | None:
        """Key check and rate limit, as the real gateway does before any endpoint."""
        k = self.knobs
        self.total += 1
        if k.latency_ms:
            await asyncio.sleep(k.latency_ms / 1000)
        demo, pro = request.headers.get("x-cg-demo-api-key"), request.headers.get("x-cg-pro-api-key")
        revoked = k.revoke_key_after is not None and self.total > k.revoke_key_after
        if revoked or not (demo in k.demo_keys or pro in k.pro_keys):
            return self._reply({"status": {"error_code": 10002, "error_message":
                                "API Key Missing or invalid"}}, 401)
        now = time.monotonic()
        while self._window and now - self._window[0] >= 60:
            self._window.popleft()
        self._window.append(now)  # failed calls count too, as on the real API
        limited = k.rate_limit_next > 0 or (k.per_minute_limit and len(self._window) > k.per_minute_limit)
        if limited:
            k.rate_limit_next = max(0, k.rate_limit_next - 1)
            headers = {"retry-after": str(k.retry_after_seconds)} if k.retry_after_seconds is not None else {}
            return self._reply(RATE_LIMIT_BODY, 429, headers)
        return None


def _public(coin: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in coin.items() if not k.startswith("_")}


def create_app(sandbox: CoinGeckoSandbox | None = None) -> FastAPI:
    """The ASGI app, mounted under /api/v3 like the real host."""
    sb = sandbox or CoinGeckoSandbox()
    app = FastAPI(title="CoinGecko sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = sb

    @app.get("/api/v3/coins/markets")
    async def markets(request: Request, vs_currency: str, order: str = "market_cap_desc",
                      per_page: int = 100, page: int = 1) -> Response:
        if (refused := await sb.gate(request)) is not None:
            return refused
        if not 1 <= per_page <= 250:
            return sb._reply({"error": "per_page must be between 1 and 250"}, 400)
        start = (page - 1) * per_page
        return sb._reply([_public(c) for c in sb.universe[start : start + per_page]])

    @app.get("/api/v3/simple/price")
    async def simple_price(request: Request, ids: str, vs_currencies: str,
                           include_last_updated_at: bool = False) -> Response:
        if (refused := await sb.gate(request)) is not None:
            return refused
        out: dict[str, Any] = {}
        for coin_id in ids.split(","):
            coin = sb.by_id.get(coin_id.strip())
            if coin is None:
                continue  # unknown ids are left out, as on the real API
            quote: dict[str, Any] = {vs_currencies.split(",")[0]: coin["current_price"]}
            if include_last_updated_at:
                quote["last_updated_at"] = 1795392000
            out[coin["id"]] = quote
        return sb._reply(out)

    @app.get("/api/v3/coins/list")
    async def coins_list(request: Request, include_platform: bool = False) -> Response:
        if (refused := await sb.gate(request)) is not None:
            return refused
        return sb._reply([{"id": c["id"], "symbol": c["symbol"], "name": c["name"],
                           **({"platforms": c["_platforms"]} if include_platform else {})}
                          for c in sb.universe])

    @app.get("/api/v3/coins/{coin_id}")
    async def coin(request: Request, coin_id: str) -> Response:
        if (refused := await sb.gate(request)) is not None:
            return refused
        if coin_id in sb.knobs.rate_limit_ids:
            after = sb.knobs.retry_after_seconds
            return sb._reply(RATE_LIMIT_BODY, 429, {"retry-after": str(after)} if after is not None else None)
        if coin_id in sb.knobs.server_error_ids:
            return sb._reply({"error": "Internal Server Error"}, 500)
        found = sb.by_id.get(coin_id)
        if found is None or coin_id in sb.knobs.missing_ids:
            return sb._reply({"error": "coin not found"}, 404)
        platforms = found["_platforms"]
        rng = _rng(coin_id + "-decimals")
        return sb._reply({
            "id": found["id"], "symbol": found["symbol"], "name": found["name"],
            "asset_platform_id": next((p for p in platforms if p), None),
            "platforms": platforms,
            "detail_platforms": {p: {"decimal_place": None if not p or rng.random() < 0.2 else 18,
                                     "contract_address": a} for p, a in platforms.items()},
            "market_cap_rank": found["market_cap_rank"],
            "last_updated": found["last_updated"],
        })

    return app
