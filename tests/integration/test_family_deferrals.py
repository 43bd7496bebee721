""""Later" stays later in every family (as ``test_deferred_entries`` for profiles): an item the
provider refused for now (429 with Retry-After, or 5xx, after the client's retries) waits for a
not-before time (Retry-After, capped by the family's ``deferMaxSeconds``; else its
``deferSeconds``), the run says how many it deferred (PARTIAL), a run before that time leaves the
item alone, and a run after it completes it, with no person."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select, update

from core.brands.models import CollectorResult
from core.crypto.models import Asset, AssetContract
from core.db import session_scope
from core.db.types import utcnow
from core.errors import RateLimitedError
from core.jobqueue import JobProgress, job_handler, start_job
from core.jobqueue.models import Job
from core.riot.models import BanCheck, RiotMatch, RiotMatchParticipant, RiotPlayer
from core.settings import get_settings
from deployments.worker.jobs_worker import JobsWorker
from flows.brands import brand_job
from flows.crypto import contract_addresses_collection, top_coins_collection
from flows.riot import ban_checker, tracked_player_updater
from sandbox.riot import puuid_of
from tests.conftest import reload_settings
from tests.factories import history_rows
from tests.integration.test_brand_jobs import make_brand, runs
from tests.integration.test_job_queue import jobs, queue_env, run_worker_until  # noqa: F401 - fixture
from tests.integration.test_riot_jobs import flag, riot_env, riot_sandbox, track  # noqa: F401 - fixtures


def within(moment: datetime | None, after: datetime, seconds: float, slack: float = 60) -> bool:
    """``moment`` is ``seconds`` after ``after`` (give or take the run's own time)."""
    assert moment is not None
    return timedelta(seconds=seconds - 1) <= moment - after <= timedelta(seconds=seconds + slack)


async def test_crypto_a_coin_refused_for_now_waits_then_a_later_run_takes_it(app_env, coingecko_sandbox, monkeypatch):
    url = app_env["DATABASE_URL"]
    await top_coins_collection(limit=6)  # bitcoin, ethereum, tether, solana, usd-coin, chainlink
    for key, value in {"COINGECKO_DEFER_MAX_SECONDS": "900", "COINGECKO_RATE_LIMIT_MAX_RETRIES": "1",
                       "COINGECKO_RATE_LIMIT_BACKOFF_MAX_MS": "20"}.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    coingecko_sandbox.update_knobs(rate_limit_ids=["tether"], retry_after_seconds=3600, server_error_ids=["usd-coin"])
    before = utcnow()

    first = await contract_addresses_collection()

    assert first.status == "PARTIAL" and first.metrics.custom["deferred"] == 2
    assert "2 coins deferred" in (first.error or "") and history_rows(url)[-1].metrics["errors"] == []
    waits = not_before_of_assets(url)
    assert within(waits["tether"], before, 900)  # Retry-After 3600, capped by coingecko.deferMaxSeconds
    assert within(waits["usd-coin"], before, 300)  # a 5xx: coingecko.deferSeconds
    assert {cg for cg, nb in waits.items() if nb is None} == {"bitcoin", "ethereum", "solana", "chainlink"}

    # Before their time a run leaves them out: no call made for them.
    calls = coingecko_sandbox.total
    second = await contract_addresses_collection()
    assert second.status == "SUCCESS" and second.metrics.custom["assets_waiting"] == 2
    assert coingecko_sandbox.total == calls + 4

    # Their time has come and CoinGecko answers again: the next run takes them.
    coingecko_sandbox.update_knobs(rate_limit_ids=[], server_error_ids=[])
    with session_scope(url) as session:
        session.execute(update(Asset).where(Asset.contracts_not_before.is_not(None))
                        .values(contracts_not_before=utcnow() - timedelta(seconds=1)))
    third = await contract_addresses_collection()
    assert third.status == "SUCCESS" and third.metrics.custom["assets_processed"] == 6
    assert set(not_before_of_assets(url).values()) == {None}
    with session_scope(url) as session:
        chains = session.execute(select(Asset.coingecko_id, AssetContract.chain)
                                 .join(AssetContract, AssetContract.asset_id == Asset.id)).all()
    assert sorted(chains) == [("chainlink", "ethereum"), ("tether", "ethereum"), ("tether", "tron"),
                              ("usd-coin", "ethereum"), ("usd-coin", "solana")]


def not_before_of_assets(url: str) -> dict[str, datetime | None]:
    with session_scope(url) as session:
        return dict(session.execute(select(Asset.coingecko_id, Asset.contracts_not_before)).tuples().all())


async def test_riot_a_player_refused_for_now_waits_then_a_later_run_takes_it(riot_env, riot_sandbox):  # noqa: F811
    url = riot_env
    broken, fine = track(url, "Broken#NA1", "Fine#NA1")
    riot_sandbox.update_knobs(server_error_puuids=[broken])
    before = utcnow()

    first = await tracked_player_updater()

    assert first is not None and first.status == "PARTIAL" and first.metrics.custom["deferred"] == 1
    assert "1 players deferred" in (first.error or "")
    assert within(player(url, broken).fetch_not_before, before, 300)  # a 5xx: riot.deferSeconds
    assert player(url, fine).fetch_not_before is None and stored_for(url, fine) > 0

    # Before its time a run leaves the player alone: no call about it.
    asked = Counter(riot_sandbox.requests)
    second = await tracked_player_updater()
    assert second is not None and second.status == "SUCCESS"
    assert not [p for p, n in riot_sandbox.requests.items() if broken in p and n != asked[p]]

    # Its time has come and Riot answers again: the next run takes it.
    riot_sandbox.update_knobs(server_error_puuids=[])
    set_past(url, RiotPlayer.fetch_not_before)
    third = await tracked_player_updater()
    assert third is not None and third.status == "SUCCESS"
    assert player(url, broken).fetch_not_before is None and stored_for(url, broken) > 0

    # The ban checker defers a check the same way, with its own not-before time.
    flagged = puuid_of("Flaky#NA1")
    flag(url, {flagged: "na1"})
    riot_sandbox.update_knobs(server_error_puuids=[flagged])
    checked = await ban_checker()
    assert checked is not None and checked.status == "PARTIAL" and checked.metrics.custom["deferred"] == 1
    assert player(url, flagged).check_not_before is not None
    riot_sandbox.update_knobs(server_error_puuids=[])
    assert (await ban_checker()).metrics.items_processed == 0  # not before its time
    set_past(url, RiotPlayer.check_not_before)
    again = await ban_checker()
    assert again is not None and again.status == "SUCCESS" and flagged in again.metrics.custom["verdicts"]
    with session_scope(url) as session:
        assert session.execute(select(BanCheck.verdict).where(BanCheck.puuid == flagged)).scalar_one() == "ACTIVE"
    assert player(url, flagged).check_not_before is None


def player(url: str, puuid: str) -> RiotPlayer:
    with session_scope(url) as session:
        return session.execute(select(RiotPlayer).where(RiotPlayer.puuid == puuid)).scalar_one()


def stored_for(url: str, puuid: str) -> int:
    with session_scope(url) as session:
        return len(session.execute(select(RiotMatch.match_id).join(
            RiotMatchParticipant, RiotMatchParticipant.match_id == RiotMatch.match_id)
            .where(RiotMatchParticipant.puuid == puuid)).all())


def set_past(url: str, column: object) -> None:
    with session_scope(url) as session:
        session.execute(update(RiotPlayer).where(column.is_not(None))  # type: ignore[attr-defined]
                        .values({column: utcnow() - timedelta(seconds=1)}))


async def test_brands_an_answer_refused_for_now_waits_then_a_later_run_takes_it(
        brand_env, collectors_sandbox, monkeypatch):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)  # three queries
    monkeypatch.setenv("COLLECTORS_DEFER_MAX_SECONDS", "900")
    reload_settings()
    collectors_sandbox.update_knobs(rate_limit_collectors=["perplexity"], retry_after_seconds=3600)
    meta = {"collectors": ["chatgpt", "perplexity"]}
    before = utcnow()

    first = await brand_job(brand_id, customer_id, "data_collection_and_scoring", metadata=meta)

    assert first.status == "PARTIAL" and first.metrics.custom["deferred"] == 3
    assert "3 answers deferred" in (first.error or "") and history_rows(url)[-1].metrics["errors"] == []
    rows = answer_rows(url)
    deferred = [a for a in rows if a.status == "deferred"]
    assert {a.collector for a in deferred} == {"perplexity"} and len(deferred) == 3
    assert all(within(a.not_before, before, 900) for a in deferred)  # Retry-After 3600, capped
    assert [r.status for r in runs(url)] == ["completed"]  # the run is not failed for it, nor retried

    # Before their time a run leaves those pairs out: no call to perplexity.
    asked = collectors_sandbox.requests["perplexity"]
    second = await brand_job(brand_id, customer_id, "data_collection", metadata=meta)
    assert second.status == "SUCCESS" and second.metrics.custom["result"]["deferred_waiting"] == 3
    assert collectors_sandbox.requests["perplexity"] == asked

    # Their time has come: the next run takes the deferred answers over and asks each once.
    collectors_sandbox.update_knobs(rate_limit_collectors=[])
    with session_scope(url) as session:
        session.execute(update(CollectorResult).where(CollectorResult.status == "deferred")
                        .values(not_before=utcnow() - timedelta(seconds=1)))
    third = await brand_job(brand_id, customer_id, "data_collection_and_scoring", metadata=meta)
    assert third.status == "SUCCESS"
    last_run = runs(url)[-1].id
    perplexity = [a for a in answer_rows(url) if a.collector == "perplexity"]
    assert len(perplexity) == 3 and {(a.status, a.job_run_id, a.not_before) for a in perplexity} == {
        ("completed", last_run, None)}
    assert collectors_sandbox.requests["perplexity"] == asked + 3


def answer_rows(url: str) -> list[CollectorResult]:
    with session_scope(url) as session:
        return list(session.execute(select(CollectorResult)).scalars())


class LaterJob(BaseModel):
    """Meets a provider's 429 (Retry-After ``retry_after``) the first ``refusals`` times it runs."""

    token: str
    refusals: int = 1
    retry_after: float = 3600


RUNS: Counter[str] = Counter()


@job_handler(LaterJob)
async def call_a_busy_provider(job: LaterJob, progress: JobProgress) -> None:
    RUNS[job.token] += 1
    if RUNS[job.token] <= job.refusals:
        error = RateLimitedError("rate limited (HTTP 429) after 3 retries: slow down", status=429, attempts=4)
        error.retry_after = job.retry_after
        raise error


async def test_queue_a_job_refused_for_now_waits_then_a_worker_takes_it(queue_env, monkeypatch):  # noqa: F811
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_MODULES", f"tests.jobqueue_handlers,{__name__}")
    monkeypatch.setenv("JOBS_DEFER_MAX_SECONDS", "900")
    reload_settings()
    token = uuid.uuid4().hex
    with session_scope(url) as session:
        job_id = start_job(session, LaterJob(token=token))
    before = utcnow()

    def deferred() -> bool:
        [job] = jobs(url)
        return job.status == "Pending" and job.not_before is not None

    worker = await run_worker_until(deferred, timeout=60, name="w-later")
    [job] = jobs(url)
    assert (job.id, job.attempts, RUNS[token]) == (job_id, 1, 1)
    assert within(job.not_before, before, 900)  # Retry-After 3600, capped by jobsWorker.deferMaxSeconds
    assert job.error_message is not None and job.error_message.startswith("deferred until ")
    assert "RateLimitedError" in job.error_message and job.completed_at is None and job.claimed_by is None
    assert worker.failures == []  # not a failure: nobody is alerted

    # Before its time no worker takes it.
    stop = asyncio.Event()
    idle = asyncio.create_task(JobsWorker(get_settings(), name="w-later").run(stop=stop))
    await asyncio.sleep(2)
    stop.set()
    await idle
    [job] = jobs(url)
    assert (job.status, job.attempts, RUNS[token]) == ("Pending", 1, 1)

    # Its time has come: a worker claims it and it completes, no person needed.
    with session_scope(url) as session:
        session.execute(update(Job).values(not_before=utcnow() - timedelta(seconds=1)))
    await run_worker_until(lambda: jobs(url)[0].status == "Completed", timeout=60, name="w-later")
    [job] = jobs(url)
    assert (job.status, job.attempts, RUNS[token], job.not_before, job.error_message) == (
        "Completed", 2, 2, None, None)
