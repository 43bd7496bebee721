"""Crypto market collection (seed 004): top coins, prices, contract addresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger
from pydantic.alias_generators import to_camel

from core.crypto.settings import CRYPTO_DEFAULTS, CryptoJobConfig, checked_limit
from core.db.types import utcnow
from core.runs.deferral import counting_deferred
from core.runs.errors import ItemError
from core.runs.result import JobMetrics, JobResult
from core.settings import Settings, get_settings
from flows.spec import DefaultSchedule, JobSpec
from tasks.crypto import (
    fetch_coin_details,
    fetch_prices,
    fetch_top_coins,
    load_assets_for_contracts,
    load_tracked_assets,
    store_contracts,
    store_prices,
    store_top_coins,
)
from tasks.runs import final_state, run_job

CONTRACTS_CHUNK = 50
DEPENDENCY_OF_PRICES = "top-coins-collection"


@flow(name="top-coins-collection")
async def top_coins_collection(limit: int | None = None) -> JobResult:
    """Top ``limit`` coins by market cap -> assets and today's ``asset_rankings``."""
    # Markets are read in pages of ``limit``: a null setting means the seed's default, not "all".
    n = (checked_limit(limit) or get_settings().crypto_jobs.top_coins_collection.limit
         or CRYPTO_DEFAULTS["topCoinsCollection"]["limit"])

    async def body(m: JobMetrics) -> None:
        fetched = await fetch_top_coins(n)
        counts = await store_top_coins(fetched.data, utcnow().date())
        # The seed's log counts assets ("100 processed, 0 created, 100 updated"), and its
        # rankings_created is "ranking records upserted", new or not.
        m.items_processed = len(fetched.data)
        m.items_created, m.items_updated = counts["assets_created"], counts["assets_updated"]
        m.items_skipped = counts["skipped"]
        m.custom = {"coins_collected": len(fetched.data), "api_calls": fetched.api_calls,
                    "assets_created": counts["assets_created"], "assets_updated": counts["assets_updated"],
                    "rankings_created": counts["rankings_inserted"] + counts["rankings_updated"],
                    "rankings_inserted": counts["rankings_inserted"], "rankings_updated": counts["rankings_updated"]}

    return final_state(await run_job("top_coins_collection", "TOP_COINS_COLLECTION", body, params={"limit": n}))


@flow(name="price-collection")
async def price_collection(limit: int | None = None) -> JobResult:
    """Current USD prices of the tracked assets -> ``asset_prices`` (one row per minute).

    Prices need the assets that top-coins collection writes: when no asset is tracked yet,
    ``top-coins-collection`` runs first as a subflow, and the result says so
    (``custom["ran_dependency"]``, ``custom["dependency_status"]``).
    """
    n = checked_limit(limit) or get_settings().crypto_jobs.price_collection.limit

    async def body(m: JobMetrics) -> None:
        assets = await load_tracked_assets(n)
        dependency: dict[str, Any] = {}
        if not assets:
            get_run_logger().info("no tracked asset yet: running %s first", DEPENDENCY_OF_PRICES)
            first = await top_coins_collection()
            dependency = {"ran_dependency": DEPENDENCY_OF_PRICES, "dependency_status": first.status,
                          "dependency_flow_run_id": first.flow_run_id}
            assets = await load_tracked_assets(n)
        fetched = await fetch_prices([cg for _, cg in assets]) if assets else None
        counts = await store_prices(fetched.data, assets) if fetched else {"created": 0, "updated": 0, "skipped": 0}
        m.items_processed = len(assets)
        m.items_created, m.items_updated, m.items_skipped = (
            counts["created"], counts["updated"], counts["skipped"])
        m.custom = {"assets_tracked": len(assets),
                    "prices_collected": len(fetched.data) if fetched else 0,
                    "prices_stored": counts["created"] + counts["updated"],
                    "api_calls": fetched.api_calls if fetched else 0, **dependency}

    return final_state(await run_job("price_collection", "PRICE_COLLECTION", body, params={"limit": n}))


@flow(name="contract-addresses-collection")
async def contract_addresses_collection(limit: int | None = None) -> JobResult:
    """Contract addresses per chain of the tracked assets -> ``asset_contracts``.

    Custom metrics carry the seed's names with the seed's meanings: ``assets_processed``
    (assets whose details were fetched), ``contracts_created`` (contract records upserted,
    new or not; ``items_created``/``items_updated`` split them), ``assets_skipped`` (assets
    that failed or have no CoinGecko id), ``malformed_contracts_skipped`` (entries CoinGecko
    sends that are no address, e.g. an EVM address with an explorer path: listed, not stored,
    not a failure of the run).

    A coin whose details CoinGecko refused for now (429/5xx after the retries) is ``deferred``:
    the run is PARTIAL and says how many, and later runs leave the coin out (``assets_waiting``)
    until its not-before time (``Retry-After``, else ``coingecko.deferSeconds``, at most
    ``deferMaxSeconds``), then fetch it again."""
    n = checked_limit(limit) or get_settings().crypto_jobs.contract_addresses_collection.limit

    async def body(m: JobMetrics) -> None:
        tracked, waiting = await load_assets_for_contracts(n)
        assets = [(aid, cg) for aid, cg in tracked if cg and cg.strip()]
        calls = created = updated = native = fetched_assets = deferred = 0
        errors: list[ItemError] = []
        malformed: list[dict[str, Any]] = []  # provider data that cannot be stored as sent
        # Chunks: a crash or a rate-limit stop keeps everything stored before it, and the run
        # still reports it (with the item errors so far) in its history row and e-mail.
        try:
            for start in range(0, len(assets), CONTRACTS_CHUNK):
                fetched = await fetch_coin_details(assets[start : start + CONTRACTS_CHUNK])
                counts = await store_contracts(fetched.data, fetched.deferred)
                deferred += len(fetched.deferred)
                calls += fetched.api_calls
                created, updated = created + counts["created"], updated + counts["updated"]
                native += counts["native_skipped"]
                malformed += counts["malformed"]
                fetched_assets += len(fetched.data)
                errors += fetched.errors
        finally:
            skipped = len(tracked) - fetched_assets
            m.items_processed = len(tracked)
            m.items_created, m.items_updated, m.items_skipped = created, updated, skipped
            m.custom = {"assets_processed": fetched_assets, "contracts_created": created + updated,
                        "assets_skipped": skipped, "native_platforms_skipped": native,
                        "malformed_contracts_skipped": malformed, "deferred": deferred,
                        "assets_waiting": waiting, "api_calls": calls, "errors": errors}

    return final_state(await run_job("contract_addresses_collection", "CONTRACT_ADDRESSES_COLLECTION", body,
                         params={"limit": n}, outcome=counting_deferred("coins")))


def _crypto_schedule(job: str) -> Callable[[Settings], DefaultSchedule]:
    def default(s: Settings) -> DefaultSchedule:  # seed 004 schedules are UTC by definition
        cfg = getattr(s.crypto_jobs, job)
        shipped = CRYPTO_DEFAULTS[to_camel(job)]["schedule"]
        chosen = cfg.schedule != shipped or not cfg.enabled
        source = f"{job.upper()}_SCHEDULE / {job.upper()}_ENABLED (or cryptoJobs.{to_camel(job)})" if chosen else None
        return DefaultSchedule(cfg.schedule, "UTC", cfg.enabled, source)
    return default



def _crypto_config(job: str) -> Callable[[Settings], dict[str, Any]]:
    return lambda s: {"limit": getattr(s.crypto_jobs, job).limit}


def _limit_parameter(config: dict[str, Any]) -> dict[str, Any]:
    """The row's ``limit`` is the deployment's default parameter (none: the flow's default)."""
    return {"limit": config["limit"]} if config.get("limit") else {}


def _crypto_job(flow: Any, title: str, description: str, key: str, *, concurrency: int | None = None) -> JobSpec:
    job = key.lower()
    return JobSpec(flow, "crypto", title, description, tags=("jobpipes", "coingecko"),
                   schedule=_crypto_schedule(job), concurrency=concurrency, config_table="job_configurations",
                   config_key=key, config_model=CryptoJobConfig, config_defaults=_crypto_config(job),
                   parameters_from_config=_limit_parameter)


JOBS = (
    _crypto_job(top_coins_collection, "Top coins collection",
                "Top coins by market cap -> assets and daily asset_rankings (seed 004).", "TOP_COINS_COLLECTION"),
    _crypto_job(price_collection, "Price collection", "Current prices of tracked assets -> asset_prices (seed 004).",
                "PRICE_COLLECTION", concurrency=1),
    _crypto_job(contract_addresses_collection, "Contract addresses collection",
                "Contract addresses per chain of tracked assets -> asset_contracts (seed 004).",
                "CONTRACT_ADDRESSES_COLLECTION"),
)
