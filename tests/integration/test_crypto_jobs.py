"""Crypto jobs on PostgreSQL against the CoinGecko sandbox: idempotent, true counts, 429s."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from core.db import session_scope
from core.db.engine import get_engine
from flows.crypto import contract_addresses_collection, price_collection, top_coins_collection
from tests.conftest import reload_settings
from tests.factories import history_rows

DUPLICATE_CHECKS = {
    "asset_rankings": "asset_id, snapshot_date, source",
    "asset_prices": "asset_id, timestamp, source",
    "asset_contracts": "chain, contract_address",
}


def duplicates(url: str) -> dict[str, int]:
    """The seed's check: GROUP BY the natural key HAVING COUNT(*) > 1, per table."""
    with get_engine(url).connect() as conn:
        return {
            table: len(conn.execute(text(
                f"SELECT {key}, COUNT(*) FROM {table} GROUP BY {key} HAVING COUNT(*) > 1")).all())
            for table, key in DUPLICATE_CHECKS.items()
        }


def count(url: str, table: str) -> int:
    with get_engine(url).connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


async def test_three_jobs_twice_no_duplicates_and_second_run_updates(app_env, monkeypatch):
    url = app_env["DATABASE_URL"]
    fixed = datetime(2026, 11, 23, 10, 15, 42, tzinfo=UTC)
    monkeypatch.setattr("tasks.crypto.utcnow", lambda: fixed)  # mock time: same minute, same day
    monkeypatch.setattr("flows.crypto.utcnow", lambda: fixed)

    first = await top_coins_collection(limit=20)
    assert first.success and first.status == "SUCCESS"
    assert (first.metrics.items_processed, first.metrics.items_created, first.metrics.items_updated) == (20, 20, 0)
    assert first.metrics.custom["assets_created"] == 20 and first.metrics.custom["api_calls"] == 1
    again = await top_coins_collection(limit=20)
    assert (again.metrics.items_created, again.metrics.items_updated) == (0, 20)
    assert again.metrics.custom["assets_updated"] == 20

    prices = await price_collection(limit=10)
    assert (prices.metrics.items_created, prices.metrics.items_updated) == (10, 0)
    prices2 = await price_collection(limit=10)
    assert (prices2.metrics.items_created, prices2.metrics.items_updated) == (0, 10)
    with get_engine(url).connect() as conn:
        stamps = conn.execute(text("SELECT DISTINCT timestamp FROM asset_prices")).scalars().all()
    assert stamps == [fixed.replace(minute=16, second=0)]  # 10:15:42, rounded to the nearest minute

    contracts = await contract_addresses_collection(limit=6)
    # bitcoin, ethereum, solana are native ({"": ""}): skipped, not failed
    assert contracts.status == "SUCCESS" and contracts.metrics.custom["native_platforms_skipped"] == 3
    assert contracts.metrics.items_created == 5  # tether x2, usd-coin x2, chainlink
    contracts2 = await contract_addresses_collection(limit=6)
    assert (contracts2.metrics.items_created, contracts2.metrics.items_updated) == (0, contracts.metrics.items_created)

    assert duplicates(url) == {t: 0 for t in DUPLICATE_CHECKS}
    assert count(url, "asset_rankings") == 20 and count(url, "asset_prices") == 10
    with get_engine(url).connect() as conn:
        address = conn.execute(text(
            "SELECT contract_address FROM asset_contracts WHERE chain = 'ethereum' AND asset_id = "
            "(SELECT id FROM assets WHERE coingecko_id = 'tether')")).scalar_one()
    assert address == "0xdac17f958d2ee523a2206206994597c13d831ec7"  # EVM: one key per contract

    runs = history_rows(url)
    assert [r.job_name for r in runs].count("top_coins_collection") == 2
    assert runs[1].items_updated == 20 and runs[1].items_created == 0
    assert all(r.status == "SUCCESS" for r in runs)


async def test_nulls_in_the_payload_are_stored_as_nulls(app_env):
    url = app_env["DATABASE_URL"]
    await top_coins_collection(limit=300)
    with get_engine(url).connect() as conn:
        unranked = conn.execute(text("SELECT COUNT(*) FROM asset_rankings WHERE rank IS NULL")).scalar_one()
        no_max = conn.execute(text("SELECT COUNT(*) FROM asset_rankings WHERE max_supply IS NULL")).scalar_one()
        no_rank_assets = conn.execute(text("SELECT COUNT(*) FROM assets WHERE market_cap_rank IS NULL")).scalar_one()
    assert unranked == 5 and no_rank_assets == 5 and no_max > 0


async def test_rate_limit_is_waited_out_and_counted(app_env, coingecko_sandbox):
    coingecko_sandbox.update_knobs(rate_limit_next=2, retry_after_seconds=0)
    result = await top_coins_collection(limit=5)
    assert result.success
    assert result.metrics.custom["api_calls"] == 3  # two 429s, then the answer
    assert history_rows(app_env["DATABASE_URL"])[0].api_calls_made == 3


async def test_rate_limit_beyond_retries_stops_the_run_as_rate_limited(app_env, coingecko_sandbox):
    coingecko_sandbox.update_knobs(rate_limit_next=10, retry_after_seconds=0)
    result = await top_coins_collection(limit=5)
    assert result.status == "RATE_LIMITED" and result.metrics.items_created == 0
    [run] = history_rows(app_env["DATABASE_URL"])
    assert run.status == "RATE_LIMITED" and "HTTP 429" in run.error_summary
    assert run.api_calls_made == 4  # the first call and its three retries, all counted


async def test_a_coin_that_vanished_is_reported_and_the_rest_stored(app_env, coingecko_sandbox):
    await top_coins_collection(limit=6)
    coingecko_sandbox.update_knobs(missing_ids=["tether"])
    result = await contract_addresses_collection()
    assert result.status == "PARTIAL" and result.metrics.custom["assets_skipped"] == 1
    assert result.metrics.items_created == 3  # usd-coin x2 + chainlink
    with session_scope(app_env["DATABASE_URL"]) as session:
        chains = session.execute(text("SELECT COUNT(*) FROM asset_contracts")).scalar_one()
    assert chains == 3


async def test_contract_metrics_have_the_seeds_names_and_meanings(app_env, coingecko_sandbox):
    await top_coins_collection(limit=6)  # bitcoin, ethereum, tether, solana, usd-coin, chainlink
    coingecko_sandbox.update_knobs(missing_ids=["tether"])
    first = await contract_addresses_collection()
    second = await contract_addresses_collection()
    seed = ("assets_processed", "contracts_created", "assets_skipped")
    # processed = assets whose details came back (natives included, they just have no
    # contract); created = contract records upserted, new or not; skipped = failed assets
    assert [first.metrics.custom[k] for k in seed] == [5, 3, 1]
    assert [second.metrics.custom[k] for k in seed] == [5, 3, 1]
    assert (first.metrics.items_processed, first.metrics.items_created, first.metrics.items_updated,
            first.metrics.items_skipped) == (6, 3, 0, 1)
    assert (second.metrics.items_created, second.metrics.items_updated) == (0, 3)
    [run] = [r for r in history_rows(app_env["DATABASE_URL"]) if r.job_name == "contract_addresses_collection"][:1]
    assert {k: run.metrics[k] for k in seed} == {"assets_processed": 5, "contracts_created": 3, "assets_skipped": 1}


async def test_prices_on_an_empty_database_run_top_coins_first_as_a_subflow(app_env):
    from prefect.client.orchestration import get_client

    url = app_env["DATABASE_URL"]
    assert count(url, "assets") == 0
    result = await price_collection(limit=10)
    assert result.status == "SUCCESS"
    assert result.metrics.custom["ran_dependency"] == "top-coins-collection"
    assert result.metrics.custom["dependency_status"] == "SUCCESS"
    assert (result.metrics.items_processed, result.metrics.items_created) == (10, 10)
    assert count(url, "assets") == 100 and count(url, "asset_prices") == 10  # top coins' default limit

    runs = {r.job_name: r for r in history_rows(url)}
    assert set(runs) == {"top_coins_collection", "price_collection"}
    assert runs["price_collection"].metrics["ran_dependency"] == "top-coins-collection"
    async with get_client() as client:
        child = await client.read_flow_run(runs["top_coins_collection"].flow_run_id)
        parent_task = await client.read_task_run(child.parent_task_run_id)
    assert str(parent_task.flow_run_id) == result.flow_run_id  # a subflow of the price run

    again = await price_collection(limit=10)
    assert "ran_dependency" not in again.metrics.custom  # assets exist now: no dependency run


async def test_a_partial_run_is_mailed_by_default(app_env, coingecko_sandbox, smtp_sink):
    await top_coins_collection(limit=6)
    assert smtp_sink.messages == []  # SUCCESS: quiet
    coingecko_sandbox.update_knobs(missing_ids=["tether"])
    result = await contract_addresses_collection()
    assert result.status == "PARTIAL"
    [mail] = smtp_sink.messages
    assert mail["Subject"].startswith("[jobpipes] contract_addresses_collection PARTIAL")
    assert "tether: HTTP 404" in mail.get_content()


async def test_a_job_configured_never_sends_nothing_and_always_sends_every_run(
        app_env, coingecko_sandbox, smtp_sink, monkeypatch):
    monkeypatch.setenv("NOTIFY_JOBS", "contract_addresses_collection=never,top_coins_collection=always")
    reload_settings()
    await top_coins_collection(limit=6)  # SUCCESS, but configured "always"
    coingecko_sandbox.update_knobs(missing_ids=["tether"])
    assert (await contract_addresses_collection()).status == "PARTIAL"  # configured "never"
    assert [m["Subject"].split()[1:3] for m in smtp_sink.messages] == [["top_coins_collection", "SUCCESS:"]]
