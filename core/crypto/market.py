"""Pure crypto-market logic (seed 004): CoinGecko payloads -> rows for the upserts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

SOURCE = "coingecko"


def _num(value: Any) -> float | None:
    """CoinGecko sends numbers, nulls and occasionally strings; keep real numbers only."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def asset_rows(coins: list[dict[str, Any]], now: datetime) -> tuple[list[dict[str, Any]], int]:
    """``assets`` rows from /coins/markets; coins without an id are skipped (and counted)."""
    rows, skipped = [], 0
    for coin in coins:
        coin_id = coin.get("id")
        if not isinstance(coin_id, str) or not coin_id:
            skipped += 1
            continue
        rows.append({
            "coingecko_id": coin_id,
            "symbol": str(coin.get("symbol") or "").upper()[:50],
            "name": str(coin.get("name") or coin_id)[:200],
            "image_url": coin.get("image"),
            "market_cap_rank": coin.get("market_cap_rank"),
            "created_at": now,
            "updated_at": now,
        })
    return rows, skipped


def ranking_rows(
    coins: list[dict[str, Any]], asset_ids: dict[str, int], snapshot: date, now: datetime
) -> list[dict[str, Any]]:
    """``asset_rankings`` rows for one snapshot date; nullable fields stay None."""
    rows = []
    for coin in coins:
        asset_id = asset_ids.get(coin.get("id") or "")
        if asset_id is None:
            continue
        rank = coin.get("market_cap_rank")
        rows.append({
            "asset_id": asset_id, "snapshot_date": snapshot, "source": SOURCE,
            "rank": rank if isinstance(rank, int) else None,
            "price_usd": _num(coin.get("current_price")),
            "market_cap_usd": _num(coin.get("market_cap")),
            "fully_diluted_valuation_usd": _num(coin.get("fully_diluted_valuation")),
            "volume_24h_usd": _num(coin.get("total_volume")),
            "price_change_24h_pct": _num(coin.get("price_change_percentage_24h")),
            "circulating_supply": _num(coin.get("circulating_supply")),
            "total_supply": _num(coin.get("total_supply")),
            "max_supply": _num(coin.get("max_supply")),
            "created_at": now, "updated_at": now,
        })
    return rows


def round_to_minute(moment: datetime) -> datetime:
    """The natural-key timestamp of a price: UTC, rounded to the nearest minute (seed 004;
    30 s and later round up)."""
    moment = moment.astimezone(UTC)
    floor = moment.replace(second=0, microsecond=0)
    return floor + timedelta(minutes=1) if moment - floor >= timedelta(seconds=30) else floor


def price_rows(
    prices: dict[str, dict[str, Any]], asset_ids: dict[str, int], now: datetime, currency: str = "usd"
) -> tuple[list[dict[str, Any]], int]:
    """``asset_prices`` rows at ``now`` rounded to the minute; assets without a price are skipped."""
    stamp = round_to_minute(now)
    rows, skipped = [], 0
    for coin_id, asset_id in asset_ids.items():
        quote = prices.get(coin_id) or {}
        price = _num(quote.get(currency))
        if price is None:
            skipped += 1
            continue
        updated = quote.get("last_updated_at")
        rows.append({
            "asset_id": asset_id, "timestamp": stamp, "source": SOURCE, "price_usd": price,
            "source_updated_at": datetime.fromtimestamp(updated, UTC) if isinstance(updated, int) else None,
            "created_at": now, "updated_at": now,
        })
    return rows, skipped


_EVM = re.compile(r"0[xX][0-9a-fA-F]{40}")
_EVM_WITH_SUFFIX = re.compile(r"0[xX][0-9a-fA-F]{40}[/?#].*")


def normalize_address(address: str) -> str:
    """An EVM address (``0x`` + 40 hex digits, case-insensitive) lower-cased, so one contract is
    one key; every other form kept verbatim: Move addresses and type tags (Aptos, Sui:
    ``0x1::aptos_coin::AptosCoin``) are case-sensitive, Solana's base58 too."""
    address = address.strip()
    return address.lower() if _EVM.fullmatch(address) else address


def malformed_address(address: str) -> str | None:
    """Why ``address`` cannot be stored as sent, or None. Real data carries EVM addresses with
    an explorer path glued on (``0x270D...2Bd0/token-transfers``)."""
    if _EVM_WITH_SUFFIX.fullmatch(address.strip()):
        return f"malformed EVM address {address.strip()!r}: text after the 40 hex digits"
    return None


def contract_rows(detail: dict[str, Any], asset_id: int, now: datetime
                  ) -> tuple[list[dict[str, Any]], int, list[dict[str, str]]]:
    """``asset_contracts`` rows from /coins/{id}: (rows, native entries skipped, malformed
    entries skipped). Native entries have an empty chain or address; a malformed one is
    ``{"chain", "address", "reason"}``, reported by the job instead of stored as sent."""
    platforms = detail.get("platforms") or {}
    details = detail.get("detail_platforms") or {}
    rows, skipped, malformed = [], 0, []
    for chain, address in platforms.items():
        if not chain or not isinstance(address, str) or not address.strip():
            skipped += 1
            continue
        if (reason := malformed_address(address)) is not None:
            malformed.append({"chain": chain, "address": address, "reason": reason})
            continue
        decimals = (details.get(chain) or {}).get("decimal_place")
        rows.append({
            "asset_id": asset_id, "chain": chain[:100], "contract_address": normalize_address(address)[:200],
            "decimals": decimals if isinstance(decimals, int) else None,
            "created_at": now, "updated_at": now,
        })
    return rows, skipped, malformed
