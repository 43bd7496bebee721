"""Upsert 100,000 asset_prices rows on PostgreSQL: batched ON CONFLICT versus row by row.

    uv run python -m bench.upsert_bench [--rows 100000] [--assets 1000]

Both variants write the same rows into a fresh database (created and dropped here), first
into an empty table (all created), then again (all updated, the idempotent re-run). The
row-by-row baseline is what a hand-written job does: one ``INSERT ... ON CONFLICT`` per
row, all in one transaction.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import text

from core.crypto.models import AssetPrice
from core.db import session_scope
from core.db.engine import dispose_engines, get_engine
from core.db.migrate import upgrade
from core.db.upsert import upsert_rows

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _rows(assets: list[int], count: int) -> list[dict[str, object]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    per_asset = count // len(assets)
    return [{"asset_id": a, "timestamp": start + timedelta(minutes=15 * i), "source": "coingecko",
             "price_usd": 1.0 + i, "source_updated_at": None, "created_at": now, "updated_at": now}
            for a in assets for i in range(per_asset)]


def _batched(url: str, rows: list[dict[str, object]]) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    with session_scope(url) as session:
        result = upsert_rows(session, AssetPrice.__table__, rows,
                             conflict_columns=["asset_id", "timestamp", "source"])
    return time.perf_counter() - t0, result.created, result.updated


def _row_by_row(url: str, rows: list[dict[str, object]]) -> float:
    sql = text(
        "INSERT INTO asset_prices (asset_id, timestamp, source, price_usd, source_updated_at,"
        " created_at, updated_at) VALUES (:asset_id, :timestamp, :source, :price_usd,"
        " :source_updated_at, :created_at, :updated_at) ON CONFLICT (asset_id, timestamp, source)"
        " DO UPDATE SET price_usd = EXCLUDED.price_usd, updated_at = EXCLUDED.updated_at")
    t0 = time.perf_counter()
    with get_engine(url).begin() as conn:
        for row in rows:
            conn.execute(sql, row)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--assets", type=int, default=1000)
    args = parser.parse_args()
    name = f"jobpipes_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        with get_engine(url).begin() as conn:
            conn.execute(text(
                "INSERT INTO assets (coingecko_id, symbol, name, is_tracked, created_at, updated_at)"
                " SELECT 'coin-' || g, 'C' || g, 'Coin ' || g, true, now(), now()"
                " FROM generate_series(1, :n) g"), {"n": args.assets})
            assets = list(conn.execute(text("SELECT id FROM assets ORDER BY id")).scalars())
        rows = _rows(assets, args.rows)
        n = len(rows)
        results = []
        for label in ("insert (empty table)", "re-run (all conflict)"):
            seconds, created, updated = _batched(url, rows)
            results.append(("batched ON CONFLICT", label, seconds, f"{created} created, {updated} updated"))
            if label.startswith("insert"):
                with get_engine(url).begin() as conn:
                    conn.execute(text("TRUNCATE asset_prices"))
                results.append(("row-by-row", label, _row_by_row(url, rows), "-"))
                with get_engine(url).begin() as conn:
                    conn.execute(text("TRUNCATE asset_prices"))
                _batched(url, rows)
            else:
                results.append(("row-by-row", label, _row_by_row(url, rows), "-"))
        print(f"{n} asset_prices rows on PostgreSQL 15, {len(assets)} assets\n")
        print("| variant | phase | seconds | rows/s | counts |\n|---|---|---|---|---|")
        for variant, phase, seconds, counts in results:
            print(f"| {variant} | {phase} | {seconds:.2f} | {n / seconds:,.0f} | {counts} |")
    finally:
        dispose_engines()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
