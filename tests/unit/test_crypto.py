"""Pure crypto logic, six-field cron translation, and the CoinGecko client's 429 handling."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from core.cron import to_prefect_cron
from core.crypto.client import CoinGeckoClient
from core.crypto.market import (
    asset_rows,
    contract_rows,
    normalize_address,
    price_rows,
    ranking_rows,
    round_to_minute,
)
from core.crypto.settings import CoinGeckoSettings
from core.errors import AuthError, ConfigError, RateLimitedError
from core.settings import load_settings

REAL = Path(__file__).resolve().parents[1] / "real_payloads"  # copied from ../shared/real-payloads, sources beside
NOW = datetime(2026, 11, 23, 10, 15, 42, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("0 0 0 * * *", "0 0 * * *"), ("0 */15 * * * *", "*/15 * * * *"),
     ("0 0 1 * * *", "0 1 * * *"), ("*/5 * * * *", "*/5 * * * *")],
)
def test_six_field_cron_with_zero_seconds_is_translated(given, expected):
    assert to_prefect_cron(given) == expected


@pytest.mark.parametrize("bad", ["30 0 0 * * *", "*/10 * * * * *", "0 0 0 * *  * 2026", "0 99 * * *"])
def test_other_cron_forms_are_refused_not_misread(bad):
    with pytest.raises(ValueError):
        to_prefect_cron(bad)


def test_env_schedule_error_names_the_variable(monkeypatch, tmp_path):
    (tmp_path / "c.yml").write_text("{}\n")
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "c.yml"))
    monkeypatch.setenv("PRICE_COLLECTION_SCHEDULE", "15 */15 * * * *")
    with pytest.raises(ConfigError, match=r"cryptoJobs.priceCollection.schedule \(env PRICE_COLLECTION_SCHEDULE\)"):
        load_settings()
    monkeypatch.setenv("PRICE_COLLECTION_SCHEDULE", "0 */15 * * * *")
    monkeypatch.setenv("PRICE_COLLECTION_ENABLED", "false")
    monkeypatch.setenv("CONTRACT_ADDRESSES_COLLECTION_LIMIT", "")
    jobs = load_settings().crypto_jobs
    assert jobs.price_collection.schedule == "*/15 * * * *" and not jobs.price_collection.enabled
    assert jobs.contract_addresses_collection.limit is None


def test_rows_keep_nulls_and_skip_coins_without_id():
    coins = [{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "current_price": 1.5,
              "market_cap_rank": None, "max_supply": None, "total_supply": "12.5"},
             {"symbol": "???", "name": "no id"}]
    assets, skipped = asset_rows(coins, NOW)
    assert skipped == 1 and assets[0]["symbol"] == "BTC"
    [ranking] = ranking_rows(coins, {"bitcoin": 7}, date(2026, 11, 23), NOW)
    assert ranking["rank"] is None and ranking["max_supply"] is None
    assert ranking["total_supply"] == 12.5 and ranking["asset_id"] == 7


def test_prices_are_keyed_by_the_minute_and_missing_ones_skipped():
    rows, skipped = price_rows({"bitcoin": {"usd": 67187.33, "last_updated_at": 1711356300}},
                               {"bitcoin": 1, "delisted": 2}, NOW)
    assert skipped == 1
    assert rows[0]["timestamp"] == datetime(2026, 11, 23, 10, 16, tzinfo=UTC)  # 10:15:42 rounds up
    assert rows[0]["source_updated_at"] == datetime.fromtimestamp(1711356300, UTC)
    assert round_to_minute(NOW).second == 0
    # seed 004: rounded to the nearest minute (item 7 of issue 22), not truncated
    assert round_to_minute(datetime(2026, 1, 1, 10, 15, 29, 999999, tzinfo=UTC)) == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert round_to_minute(datetime(2026, 1, 1, 23, 59, 30, tzinfo=UTC)) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


def test_contracts_skip_native_and_normalise_evm_addresses():
    detail = {"platforms": {"": "", "ethereum": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                            "solana": "EPjFWdd5Auf", "tron": None},
              "detail_platforms": {"ethereum": {"decimal_place": 6}, "solana": {"decimal_place": None}}}
    rows, skipped, malformed = contract_rows(detail, 3, NOW)
    assert skipped == 2 and malformed == []
    assert {(r["chain"], r["contract_address"], r["decimals"]) for r in rows} == {
        ("ethereum", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 6), ("solana", "EPjFWdd5Auf", None)}
    assert normalize_address(" 0xABCDEF0123456789abcdef0123456789ABCDEF01 ") == "0xabcdef0123456789abcdef0123456789abcdef01"


def test_real_coin_list_move_addresses_stay_verbatim_and_malformed_evm_ones_are_flagged():
    """Issue 22 item 1, on CoinGecko's real /coins/list?include_platform=true: Move type tags
    (Aptos, Sui) are case-sensitive and kept as sent; only 0x + 40 hex is lower-cased; an EVM
    address with an explorer path glued on is reported, not stored."""
    coins = json.loads((REAL / "coingecko" / "coins_list_full.json").read_text())
    stored: dict[tuple[str, str], str] = {}
    flagged: list[tuple[str, str, str]] = []
    for coin in coins:
        rows, _, malformed = contract_rows(coin, 1, NOW)
        sent = coin.get("platforms") or {}
        for row in rows:
            stored[(coin["id"], row["chain"])] = row["contract_address"]
            original = sent[row["chain"]].strip()
            if "::" in original:  # a Move type tag: byte for byte what CoinGecko sent
                assert row["contract_address"] == original, original
        flagged += [(coin["id"], m["chain"], m["address"]) for m in malformed]
    moves = [a for a in stored.values() if "::" in a]
    assert len(moves) >= 17 and any(a != a.lower() for a in moves)
    assert ("freedom-reserve", "xdai", "0x270DE58F54649608D316fAa795a9941b355A2Bd0/token-transfers") in flagged
    assert all("/" in address for _, _, address in flagged)
    evm = [a for a in stored.values() if len(a) == 42 and a.startswith("0x")]
    assert evm and all(a == a.lower() for a in evm)


def _client(responses: list[httpx.Response], **kw: object) -> tuple[CoinGeckoClient, list[float], list[httpx.Request]]:
    sleeps: list[float] = []
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses.pop(0)

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    settings = CoinGeckoSettings(baseUrl="http://cg.test/api/v3", apiKey="k", **kw)
    return CoinGeckoClient(settings, transport=httpx.MockTransport(handler), sleep=fake_sleep), sleeps, seen


LIMITED = httpx.Response(429, headers={"retry-after": "5"}, json={"status": {
    "error_code": 429, "error_message": "You've exceeded the Rate Limit."}})


async def test_429_honours_retry_after_then_succeeds_and_counts_calls():
    client, sleeps, seen = _client([LIMITED, httpx.Response(200, json=[{"id": "bitcoin"}])],
                                   callsPerMinute=10_000)
    async with client:
        assert await client.coins_markets(1) == [{"id": "bitcoin"}]
    assert 5.0 in sleeps and client.api_calls == 2
    assert seen[0].headers["x-cg-demo-api-key"] == "k"
    assert seen[0].url.path == "/api/v3/coins/markets" and seen[0].url.params["per_page"] == "1"


async def test_429_beyond_retries_and_pro_header_and_auth():
    client, _, _ = _client([LIMITED] * 4, rateLimitMaxRetries=3, callsPerMinute=10_000)
    async with client:
        with pytest.raises(RateLimitedError, match="exceeded the Rate Limit"):
            await client.simple_price(["bitcoin"])
    client, _, seen = _client([httpx.Response(401, json={"status": {"error_code": 10002,
                               "error_message": "API Key Missing"}})], plan="pro")
    async with client:
        with pytest.raises(AuthError, match="API Key Missing"):
            await client.coin("bitcoin")
    assert "x-cg-pro-api-key" in seen[0].headers


async def test_pacing_spaces_calls_per_minute():
    ok = [httpx.Response(200, json={}) for _ in range(3)]
    client, sleeps, _ = _client(ok, callsPerMinute=30)
    async with client:
        for _ in range(3):
            await client.simple_price(["x"])
    # The clock is frozen (only sleep is faked): calls 2 and 3 start 2 s and 4 s after call 1.
    assert sleeps == pytest.approx([2.0, 4.0], abs=0.05)


async def test_markets_pages_skip_a_coin_that_drifted_onto_the_next_page():
    """Issue 22 item 6: ranks move between two page requests; a coin seen twice is one coin."""
    page1 = [{"id": f"coin{i}"} for i in range(250)]
    page2 = [{"id": "coin249"}, *({"id": f"coin{i}"} for i in range(250, 499))]  # coin249 slipped a rank
    page3 = [{"id": "coin499"}, {"id": "coin500"}]
    client, _, seen = _client([httpx.Response(200, json=page1), httpx.Response(200, json=page2),
                               httpx.Response(200, json=page3)], callsPerMinute=10_000)
    async with client:
        coins = await client.coins_markets(500)
    ids = [c["id"] for c in coins]
    assert len(ids) == 500 == len(set(ids)) and ids[-1] == "coin499"
    assert [r.url.params["page"] for r in seen] == ["1", "2", "3"]


def test_a_stopped_multi_call_fetch_reports_every_call_it_made():
    """Issue 22 item 6: a 429 on the second /simple/price chunk carries the first chunk's call
    too, so the run's history counts both."""
    from tasks.crypto import _counted

    class Client:
        api_calls = 5  # chunk 1: one call; chunk 2: one call and three retries

    error = RateLimitedError("rate limited (HTTP 429) after 3 retries", status=429, attempts=4)
    with pytest.raises(RateLimitedError) as raised, _counted(Client()):  # type: ignore[arg-type]
        raise error
    assert raised.value.attempts == 5 and "after 5 API calls" in str(raised.value)
