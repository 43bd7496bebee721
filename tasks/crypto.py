"""CoinGecko tasks: one fetch task per stage, one database task per upsert (seed 004).

Every database step rides out an outage (``tasks._common.ride_out_db``: backoff with jitter up
to ``database.outageBudgetSeconds``), so what a stage fetched is stored once the database is
back instead of being thrown away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.crypto import market as crypto
from core.crypto import repo as repo
from core.crypto.client import CoinGeckoClient
from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import UpsertResult
from core.errors import JobError, ProviderError
from core.runs.deferral import is_later, not_before
from core.runs.errors import ItemError, item_error
from core.settings import get_settings
from tasks._common import db_url, ride_out_db, shared_limits


@dataclass
class Fetched:
    """A stage's payload plus the HTTP calls it cost, any per-item errors, and the items the
    provider refused for now (``Deferred``)."""

    data: Any
    api_calls: int
    errors: list[ItemError] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)


@dataclass(frozen=True)
class Deferred:
    """An asset whose details CoinGecko refused for now (429/5xx after the retries)."""

    asset_id: int
    coin_id: str
    not_before: datetime


@task(cache_policy=NO_CACHE)
async def fetch_top_coins(limit: int) -> Fetched:
    """GET /coins/markets for the top ``limit`` coins by market cap."""
    async with CoinGeckoClient(get_settings().coingecko, **shared_limits()) as client:
        with _counted(client):
            return Fetched(await client.coins_markets(limit), client.api_calls)


@contextlib.contextmanager
def _counted(client: CoinGeckoClient) -> Iterator[None]:
    """An error that stops a multi-call fetch carries every call the fetch made (earlier pages
    or chunks included), so the run records them all, not only the failing call's attempts."""
    try:
        yield
    except JobError as exc:
        exc.args = (f"{exc} (after {client.api_calls} API calls)",)
        if isinstance(exc, ProviderError):
            exc.attempts = client.api_calls
        raise


@task(cache_policy=NO_CACHE)
async def store_top_coins(coins: list[dict[str, Any]], snapshot: date) -> dict[str, int]:
    """Upsert assets and the day's rankings in one transaction; returns true counts."""
    return await ride_out_db(_store_top_coins, coins, snapshot, what="the top coins' write")


def _store_top_coins(coins: list[dict[str, Any]], snapshot: date) -> dict[str, int]:
    now = utcnow()
    rows, skipped = crypto.asset_rows(coins, now)
    with session_scope(db_url()) as session:
        assets, ids = repo.upsert_assets(session, rows)
        rankings = repo.upsert_rankings(session, crypto.ranking_rows(coins, ids, snapshot, now))
    return {"assets_created": assets.created, "assets_updated": assets.updated,
            "rankings_inserted": rankings.created, "rankings_updated": rankings.updated,
            "skipped": skipped}


@task(cache_policy=NO_CACHE)
async def load_tracked_assets(limit: int | None) -> list[tuple[int, str]]:
    """(asset id, coingecko id) of the tracked assets, best rank first."""
    return await ride_out_db(_tracked, limit, what="the tracked assets")


def _tracked(limit: int | None) -> list[tuple[int, str]]:
    with session_scope(db_url()) as session:
        return repo.tracked_assets(session, limit)


@task(cache_policy=NO_CACHE)
async def load_assets_for_contracts(limit: int | None) -> tuple[list[tuple[int, str]], int]:
    """The tracked assets whose details may be fetched now (best rank first), and how many of the
    first ``limit`` wait for the not-before time of an earlier deferral."""
    return await ride_out_db(_for_contracts, limit, what="the tracked assets")


def _for_contracts(limit: int | None) -> tuple[list[tuple[int, str]], int]:
    with session_scope(db_url()) as session:
        return repo.assets_for_contracts(session, limit, utcnow())


@task(cache_policy=NO_CACHE)
async def fetch_prices(coin_ids: list[str]) -> Fetched:
    """GET /simple/price for ``coin_ids`` (100 ids per call)."""
    async with CoinGeckoClient(get_settings().coingecko, **shared_limits()) as client:
        with _counted(client):
            return Fetched(await client.simple_price(coin_ids), client.api_calls)


@task(cache_policy=NO_CACHE)
async def store_prices(prices: dict[str, dict[str, Any]], assets: list[tuple[int, str]]) -> dict[str, int]:
    """Upsert one price per asset at this minute; assets without a price are skipped."""
    return await ride_out_db(_store_prices, prices, assets, what="the prices' write")


def _store_prices(prices: dict[str, dict[str, Any]], assets: list[tuple[int, str]]) -> dict[str, int]:
    now = utcnow()
    rows, skipped = crypto.price_rows(prices, {cg: aid for aid, cg in assets}, now)
    with session_scope(db_url()) as session:
        result = repo.upsert_prices(session, rows)
    return {"created": result.created, "updated": result.updated, "skipped": skipped}


@task(cache_policy=NO_CACHE)
async def fetch_coin_details(assets: list[tuple[int, str]], concurrency: int = 4) -> Fetched:
    """GET /coins/{id} per asset (paced by the client); a failing asset is reported, not fatal,
    and one the provider refused for now (429/5xx after the retries) is deferred: not before
    its ``Retry-After`` (else ``coingecko.deferSeconds``, at most ``deferMaxSeconds``)."""
    settings = get_settings().coingecko
    gate = asyncio.Semaphore(concurrency)
    details: list[tuple[int, dict[str, Any]]] = []
    errors: list[ItemError] = []
    deferred: list[Deferred] = []
    logger = get_run_logger()
    async with CoinGeckoClient(settings, **shared_limits()) as client:

        async def one(asset_id: int, coin_id: str) -> None:
            async with gate:
                try:
                    details.append((asset_id, await client.coin(coin_id)))
                except JobError as exc:
                    if exc.fatal:
                        raise
                    if is_later(exc):
                        until = not_before(exc, defer_seconds=settings.defer_seconds,
                                           defer_max_seconds=settings.defer_max_seconds)
                        deferred.append(Deferred(asset_id, coin_id, until))
                        logger.warning("details of %s deferred until %s: %s", coin_id, until.isoformat(), exc)
                    else:
                        errors.append(item_error(coin_id, exc))

        await asyncio.gather(*(one(aid, cg) for aid, cg in assets))
        return Fetched(details, client.api_calls, errors, deferred)


@task(cache_policy=NO_CACHE)
async def store_contracts(details: list[tuple[int, dict[str, Any]]],
                          deferred: list[Deferred] | None = None) -> dict[str, Any]:
    """Upsert every contract of the fetched coins; native-coin entries are skipped, malformed
    ones (``core.crypto.market.malformed_address``) skipped and listed with their coin. In the
    same transaction the ``deferred`` assets get their not-before time and the fetched ones lose
    theirs."""
    counts, skipped_platforms, malformed = await ride_out_db(
        _store_contracts, details, deferred or [], what="the contracts' write")
    logger = get_run_logger()
    logger.info("contracts: %d created, %d updated, %d native entries skipped",
                counts.created, counts.updated, skipped_platforms)
    for entry in malformed:
        logger.warning("contract of %s on %s not stored: %s", entry["coin"], entry["chain"], entry["reason"])
    return {"created": counts.created, "updated": counts.updated,
            "native_skipped": skipped_platforms, "malformed": malformed}


def _store_contracts(details: list[tuple[int, dict[str, Any]]], deferred: list[Deferred]
                     ) -> tuple[UpsertResult, int, list[dict[str, Any]]]:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    skipped_platforms = 0
    malformed: list[dict[str, Any]] = []
    for asset_id, detail in details:
        found, skipped, bad = crypto.contract_rows(detail, asset_id, now)
        rows += found
        skipped_platforms += skipped
        malformed += [{"coin": detail.get("id"), **entry} for entry in bad]
    with session_scope(db_url()) as session:
        result = repo.upsert_contracts(session, rows)
        repo.defer_contracts(session, [(d.asset_id, d.not_before) for d in deferred])
        repo.clear_contracts_deferral(session, [asset_id for asset_id, _ in details])
    return result, skipped_platforms, malformed
