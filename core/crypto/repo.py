"""Crypto repositories: idempotent upserts by natural key, and the tracked-asset list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
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


def _tracked(limit: int | None) -> Any:
    stmt = (
        select(Asset.id, Asset.coingecko_id, Asset.contracts_not_before)
        .where(Asset.is_tracked.is_(True))
        .order_by(Asset.market_cap_rank.is_(None), Asset.market_cap_rank, Asset.id)
    )
    return stmt.limit(limit) if limit else stmt


def tracked_assets(session: Session, limit: int | None) -> list[tuple[int, str]]:
    """(asset id, coingecko id) of tracked assets, best market-cap rank first."""
    return [(row.id, row.coingecko_id) for row in session.execute(_tracked(limit))]


def assets_for_contracts(session: Session, limit: int | None, now: datetime) -> tuple[list[tuple[int, str]], int]:
    """The first ``limit`` tracked assets (best rank first) whose details may be fetched at
    ``now``, and how many of them wait for ``contracts_not_before`` (an earlier deferral)."""
    rows = session.execute(_tracked(limit)).all()
    due = [(r.id, r.coingecko_id) for r in rows if r.contracts_not_before is None or r.contracts_not_before <= now]
    return due, len(rows) - len(due)


def defer_contracts(session: Session, deferred: Sequence[tuple[int, datetime]]) -> None:
    """The provider refused these assets' details for now: not before the given time."""
    for asset_id, until in deferred:
        session.execute(update(Asset).where(Asset.id == asset_id).values(contracts_not_before=until)
                        .execution_options(synchronize_session=False))


def clear_contracts_deferral(session: Session, asset_ids: Sequence[int]) -> None:
    """These assets' details came back: no deferral left (one statement, deferred ones only)."""
    if asset_ids:
        session.execute(update(Asset).where(Asset.id.in_(list(asset_ids)), Asset.contracts_not_before.is_not(None))
                        .values(contracts_not_before=None).execution_options(synchronize_session=False))
