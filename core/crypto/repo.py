"""Crypto repositories: idempotent upserts by natural key, and the tracked-asset list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.crypto.models import Asset, AssetContract, AssetPrice, AssetRanking
from core.db.upsert import UpsertResult, upsert_rows


def upsert_assets(session: Session, rows: list[dict[str, Any]]) -> tuple[UpsertResult, dict[str, int]]:
    """Upsert by coingecko_id; returns the counts and coingecko_id -> asset id."""
    result = upsert_rows(session, Asset.__table__, rows, conflict_columns=["coingecko_id"],
                         returning=["id", "coingecko_id"])
    return result, {r.coingecko_id: r.id for r in result.rows}


def upsert_rankings(session: Session, rows: list[dict[str, Any]]) -> UpsertResult:
    return upsert_rows(session, AssetRanking.__table__, rows,
                       conflict_columns=["asset_id", "snapshot_date", "source"])


def upsert_prices(session: Session, rows: list[dict[str, Any]]) -> UpsertResult:
    return upsert_rows(session, AssetPrice.__table__, rows,
                       conflict_columns=["asset_id", "timestamp", "source"])


def upsert_contracts(session: Session, rows: list[dict[str, Any]]) -> UpsertResult:
    return upsert_rows(session, AssetContract.__table__, rows,
                       conflict_columns=["chain", "contract_address"])


def tracked_assets(session: Session, limit: int | None) -> list[tuple[int, str]]:
    """(asset id, coingecko id) of tracked assets, best market-cap rank first."""
    stmt = (
        select(Asset.id, Asset.coingecko_id)
        .where(Asset.is_tracked.is_(True))
        .order_by(Asset.market_cap_rank.is_(None), Asset.market_cap_rank, Asset.id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return [(row.id, row.coingecko_id) for row in session.execute(stmt)]
