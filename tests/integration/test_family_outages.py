"""A 10-second database outage in the middle of a run of every family (crypto, Riot, brands, the
job queue): each database step waits it out, and the run ends as if nothing happened, nothing
lost; past a (shortened) outage budget the run stops cleanly and records why.

As in ``test_db_outage_run``, the app database is reached through a TCP proxy that is closed
(every connection dropped, new ones refused) and opened again; PostgreSQL itself never stops."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.brands.models import CollectorResult
from core.crypto.models import AssetContract
from core.db import session_scope
from core.db.engine import dispose_engines
from core.errors import JobRunFailed
from core.jobqueue import start_job
from core.jobqueue.models import Job
from core.riot.models import RiotMatch
from flows.brands import brand_job
from flows.crypto import contract_addresses_collection, top_coins_collection
from flows.riot import tracked_player_updater
from tests.conftest import reload_settings
from tests.factories import history_rows
from tests.faults import TcpProxy
from tests.integration.test_brand_jobs import make_brand, runs
from tests.integration.test_job_queue import jobs, markers, queue_env, run_worker_until  # noqa: F401 - fixture
from tests.integration.test_riot_jobs import riot_env, riot_sandbox, track  # noqa: F401 - fixtures
from tests.jobqueue_handlers import RecordJob

OUTAGE_S = 10


@pytest.fixture
def proxy(app_env, monkeypatch) -> Iterator[TcpProxy]:
    """The app database behind a TCP proxy (DATABASE_URL points at it); the test's own reads
    and writes use ``app_env["DATABASE_URL"]``, the database itself."""
    parsed = make_url(app_env["DATABASE_URL"])
    tcp = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    monkeypatch.setenv("DATABASE_URL", parsed.set(port=tcp.port).render_as_string(hide_password=False))
    reload_settings()
    try:
        yield tcp
    finally:
        tcp.close()
        dispose_engines()


async def cut_when(proxy: TcpProxy, ready: Callable[[], bool], *, seconds: float = OUTAGE_S,
                   until: Callable[[], bool] | None = None) -> float:
    """Once ``ready()``, the database is gone for ``seconds`` (or until ``until()``); returns when
    it went down (monotonic)."""
    while not ready():
        await asyncio.sleep(0.02)
    proxy.down()
    down = time.monotonic()
    if until is None:
        await asyncio.sleep(seconds)
    else:
        while not until():
            await asyncio.sleep(0.05)
    proxy.up()
    return down


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def waited_it_out(caplog: pytest.LogCaptureFixture, what: str) -> bool:
    """One line when the outage started during ``what``, one when the database was back."""
    lines = said(caplog)
    return (any(m.startswith(f"database unavailable during {what}") for m in lines)
            and any(m.startswith("database back after ") for m in lines))


def count(url: str, model: object) -> int:
    with session_scope(url) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


async def test_crypto_contracts_ride_out_the_outage_and_keep_every_fetched_detail(
        app_env, coingecko_sandbox, proxy, caplog):
    """The measured failure: the outage hit the contracts' write and the details were thrown away."""
    url = app_env["DATABASE_URL"]
    await top_coins_collection(limit=12)
    coingecko_sandbox.update_knobs(latency_ms=300)
    caplog.set_level(logging.WARNING)
    sent = coingecko_sandbox.total
    # Down while the last answers are on their way back: the details are fetched, their write is not.
    cut = asyncio.create_task(cut_when(proxy, lambda: coingecko_sandbox.total >= sent + 12))
    result = await contract_addresses_collection()
    await cut

    assert result.status == "SUCCESS" and result.metrics.custom["assets_processed"] == 12
    assert count(url, AssetContract) == result.metrics.items_created > 0
    run = [r for r in history_rows(url) if r.job_name == "contract_addresses_collection"]
    assert [(r.status, r.total_processed) for r in run] == [("SUCCESS", 12)]
    assert waited_it_out(caplog, "the contracts' write")


async def test_past_the_outage_budget_a_crypto_run_stops_and_records_why(app_env, coingecko_sandbox, proxy,
                                                                         monkeypatch, caplog):
    url = app_env["DATABASE_URL"]
    await top_coins_collection(limit=6)
    monkeypatch.setenv("DATABASE_OUTAGE_BUDGET_SECONDS", "2")
    reload_settings()
    coingecko_sandbox.update_knobs(latency_ms=200)
    caplog.set_level(logging.WARNING)
    sent = coingecko_sandbox.total

    def stopped() -> bool:  # the run gave up on its write: the database comes back for its history row
        return any("stopped by an error" in m for m in said(caplog))

    cut = asyncio.create_task(cut_when(proxy, lambda: coingecko_sandbox.total >= sent + 6, until=stopped))
    started = time.monotonic()
    with pytest.raises(JobRunFailed, match="OperationalError"):
        await contract_addresses_collection()
    down = await cut
    assert time.monotonic() - down < 30  # the budget (2 s), not the default minute

    [run] = [r for r in history_rows(url) if r.job_name == "contract_addresses_collection"]
    assert run.status == "FAILED" and "OperationalError" in (run.error_summary or "")
    assert count(url, AssetContract) == 0
    assert any(m.startswith("database unavailable during the contracts' write") for m in said(caplog))
    again = await contract_addresses_collection()  # the database is back: the next run does it all
    assert again.status == "SUCCESS" and count(url, AssetContract) == again.metrics.items_created
    assert time.monotonic() - started < 120


async def test_riot_match_fetch_rides_out_the_outage_with_every_match_stored_once(
        riot_env, riot_sandbox, proxy, caplog):  # noqa: F811 - the fixtures above
    url = riot_env
    track(url, "Outage#NA1", "Steady#NA1")
    riot_sandbox.update_knobs(latency_ms=150)
    caplog.set_level(logging.WARNING)

    def matches_asked() -> int:
        return sum(n for path, n in riot_sandbox.requests.items() if "/lol/match/v5/matches/" in path
                   and not path.endswith("/ids"))

    cut = asyncio.create_task(cut_when(proxy, lambda: matches_asked() >= 5))
    result = await tracked_player_updater()
    await cut

    assert result is not None and result.status == "SUCCESS"
    stored = result.metrics.custom["matches_stored"]
    assert stored == matches_asked() == count(url, RiotMatch) > 5  # each match fetched and stored once
    assert [r.status for r in history_rows(url)] == ["SUCCESS"]
    # The first step to meet it is the shared Riot budget learning the answer's headers, or the match's write.
    assert waited_it_out(caplog, "")


async def test_brand_collection_rides_out_the_outage_with_every_answer_kept(
        brand_env, collectors_sandbox, proxy, caplog):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    collectors_sandbox.update_knobs(latency_ms=200)
    caplog.set_level(logging.WARNING)
    cut = asyncio.create_task(cut_when(proxy, lambda: collectors_sandbox.total >= 3))
    result = await brand_job(brand_id, customer_id, "data_collection_and_scoring",
                             metadata={"collectors": ["chatgpt", "perplexity"]})
    await cut

    assert result.status == "SUCCESS"
    [run] = runs(url)
    assert (run.status, run.attempts, run.metrics["data_collection"]["successful_executions"]) == ("completed", 1, 6)
    with session_scope(url) as session:
        statuses = session.execute(select(CollectorResult.status)).scalars().all()
    assert sorted(statuses) == ["completed"] * 6 and collectors_sandbox.total == 6  # nothing asked twice
    assert [r.status for r in history_rows(url)] == ["SUCCESS"]
    assert waited_it_out(caplog, "the answers' write")


async def test_the_job_queue_rides_out_the_outage_and_runs_every_job_once(
        queue_env, proxy, monkeypatch, caplog):  # noqa: F811 - the fixture above
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_HEARTBEAT_SECONDS", "10")  # an outage is no orphan: 30 s of silence would be
    reload_settings()
    token = uuid.uuid4().hex
    with session_scope(url) as session:
        for _ in range(6):
            start_job(session, RecordJob(token=token, seconds=1.5))
    caplog.set_level(logging.WARNING)

    def finished() -> bool:
        return len([j for j in jobs(url) if j.status in ("Completed", "Failed")]) == 6

    cut = asyncio.create_task(cut_when(proxy, lambda: markers("start", token) >= 3))
    await run_worker_until(lambda: cut.done() and finished(), timeout=90, name="w-outage")
    await cut

    assert {j.status for j in jobs(url)} == {"Completed"} and {j.attempts for j in jobs(url)} == {1}
    assert markers("start", token) == markers("done", token) == 6  # every job ran once
    assert count(url, Job) == 6
    lines = said(caplog)
    assert any(m.startswith("database unavailable during ") for m in lines)
    assert any(m.startswith("database back after ") for m in lines)


async def test_past_the_outage_budget_the_jobs_worker_waits_for_the_database_and_loses_nothing(
        queue_env, proxy, monkeypatch, caplog):  # noqa: F811 - the fixture above
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_HEARTBEAT_SECONDS", "10")
    monkeypatch.setenv("DATABASE_OUTAGE_BUDGET_SECONDS", "1")
    reload_settings()
    token = uuid.uuid4().hex
    with session_scope(url) as session:
        for _ in range(4):
            start_job(session, RecordJob(token=token, seconds=1))
    caplog.set_level(logging.WARNING)

    def finished() -> bool:
        return len([j for j in jobs(url) if j.status in ("Completed", "Failed")]) == 4

    cut = asyncio.create_task(cut_when(proxy, lambda: markers("start", token) >= 2, seconds=6))
    await run_worker_until(lambda: cut.done() and finished(), timeout=90, name="w-long-outage")
    await cut

    assert {j.status for j in jobs(url)} == {"Completed"} and markers("done", token) == 4
    lines = said(caplog)
    assert any(m.startswith("database unavailable during the jobs' claim") for m in lines)
    # Past the budget the session (its flow run) ended, with the reason, once its jobs had finished;
    # the worker outlived it and a new session ran what was left.
    assert any(m.startswith("Finished in state Failed") and "OperationalError" in m for m in lines)
