"""The operations API (issue 11) against PostgreSQL and a real Prefect server (the test
harness), with a Prefect Runner executing the flow runs it creates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from prefect.client.orchestration import get_client
from prefect.runner import Runner
from prefect.states import Crashed, Running
from sqlalchemy import select, text

from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.db.types import utcnow
from core.jobqueue.examples import PurgeExpiredRegistrationsJob
from core.runs.models import JobExecutionHistory
from deployments.api.app import create_app
from deployments.control.catalog import FIXED
from deployments.control.overview import NO_SCHEDULED_RUN
from deployments.control.scheduled_jobs import add_or_update_scheduled_job
from prefect_api import next_scheduled_runs, read_deployment_or_none
from tests.integration.test_brand_admin_api import TOKEN, body
from tests.integration.test_brand_jobs import make_brand

pytestmark = pytest.mark.asyncio(loop_scope="session")
SEED_DUPLICATES = """SELECT asset_id, snapshot_date, source, COUNT(*) as count
  FROM asset_rankings GROUP BY asset_id, snapshot_date, source HAVING COUNT(*) > 1"""


def _client(headers: dict[str, str] | None = None, wait: float = 120) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(run_wait_seconds=wait)),
                             base_url="http://ops", headers=headers or {}, timeout=180)


@contextmanager
def job_configurations_kept(url: str) -> Iterator[None]:
    """``job_configurations`` is seeded by migrations, not emptied between tests: put it back."""
    table = JobConfiguration.__table__
    with session_scope(url) as session:
        saved = [dict(row._mapping) for row in session.execute(table.select())]
    try:
        yield
    finally:
        with session_scope(url) as session:
            session.execute(table.delete())
            session.execute(table.insert(), saved)


@pytest.fixture
def riot_env(brand_env, riot_api_sandbox, monkeypatch) -> Iterator[dict[str, str]]:
    """brand_env plus the Riot sandbox (the tracked-players route calls account-v1)."""
    from core.riot.client import reset_pacers
    from tests.conftest import reload_settings

    monkeypatch.setenv("RIOT_BASE_URL_TEMPLATE", riot_api_sandbox.url + "/{route}")  # type: ignore[attr-defined]
    monkeypatch.setenv("RIOT_API_KEY", "RGAPI-sandbox")
    reload_settings()
    reset_pacers()
    with job_configurations_kept(brand_env["DATABASE_URL"]):
        yield brand_env


@pytest.fixture
async def api(brand_env) -> AsyncIterator[httpx.AsyncClient]:
    with job_configurations_kept(brand_env["DATABASE_URL"]):
        async with _client({"Authorization": f"Bearer {TOKEN}"}) as client:
            yield client


async def _delete_run(client: object, run_id: uuid.UUID) -> None:
    """Deleted, or already gone (deleting a parent run deletes its subflow runs too)."""
    from prefect.exceptions import ObjectNotFound

    try:
        await client.delete_flow_run(run_id)  # type: ignore[attr-defined]
    except ObjectNotFound:
        pass


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def runner(brand_env_module) -> AsyncIterator[Runner]:
    """A Prefect Runner serving the crypto and smurf-analyzer deployments (polls every second)."""
    # Runs left queued by earlier tests of the session (the schemathesis test triggers dozens)
    # would otherwise come first: this module starts from an empty queue.
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    async with get_client() as client:
        while queued := await client.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING]))), limit=200):
            await asyncio.gather(*(_delete_run(client, run.id) for run in queued))
    runner = Runner(name=f"ops-test-{uuid.uuid4().hex[:6]}", query_seconds=1, pause_on_shutdown=False)
    for job_id in ("top-coins-collection", "price-collection", "contract-addresses-collection", "smurf-analyzer"):
        await runner.add_flow(FIXED[job_id].flow, name=job_id)
    task = asyncio.create_task(runner.start())
    await asyncio.sleep(1)
    yield runner
    runner.stopping = True
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


@pytest.fixture(scope="module")
def brand_env_module(pg_url, prefect_harness, coingecko_sandbox, rapidapi_sandbox, smtp_sink,
                     collectors_sandbox, tmp_path_factory):
    """What ``brand_env`` sets, for the module-scoped runner (its flow runs inherit os.environ)."""
    import os

    from tests.conftest import reload_settings

    data = tmp_path_factory.mktemp("ops")
    env = {"DATABASE_URL": pg_url, "DATA_DIR": str(data / "data"), "STORAGE_URL": (data / "objects").as_uri(),
           "COINGECKO_BASE_URL": coingecko_sandbox.url, "COINGECKO_API_KEY": "sandbox-cg-key",
           "COINGECKO_CALLS_PER_MINUTE": "6000", "COINGECKO_RATE_LIMIT_BACKOFF_MS": "10",
           "SMTP_HOST": smtp_sink.host, "SMTP_PORT": str(smtp_sink.port), "BRAND_ADMIN_TOKEN": TOKEN}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reload_settings()
    yield env
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reload_settings()


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI, path parameters filled in."""
    out = []
    for path, methods in create_app().openapi()["paths"].items():
        path = path.replace("{job_id}", "price-collection").replace("{run_id}", str(uuid.uuid4()))
        out += [(m.upper(), path.replace("{brand_id}", str(uuid.uuid4()))) for m in methods]
    return out


async def test_every_api_route_requires_the_bearer_token(brand_env):
    routes = _routes()
    assert len(routes) >= 20
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic abc"}):
        async with _client(headers) as client:
            for method, path in routes:
                response = await client.request(method, path, json={})
                assert response.status_code == 401, (method, path, headers)
                assert TOKEN not in response.text
    async with _client() as client:  # the page shell and the docs carry no data
        assert (await client.get("/admin/scheduled-jobs")).status_code == 200
        assert "/api/v1/jobs/status/overview" in (await client.get("/openapi.json")).text


async def _crash_a_run(job_id: str) -> str:
    async with get_client() as client:
        from prefect_api import deployment_id

        dep = await deployment_id(client, FIXED[job_id].flow, job_id)
        run = await client.create_flow_run_from_deployment(dep)
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.set_flow_run_state(run.id, Crashed(message="worker killed"), force=True)
        return str(run.id)


async def test_overview_covers_the_five_families_with_rate_limited_and_crashed_runs(api, brand_env):
    brand, customer = make_brand(brand_env["DATABASE_URL"])
    created = (await api.post("/api/admin/scheduled-jobs", json=body(brand, customer))).json()
    await asyncio.to_thread(add_or_update_scheduled_job, PurgeExpiredRegistrationsJob(), "0 3 * * *",
                            timezone="Europe/Madrid")
    now = utcnow()
    with session_scope(brand_env["DATABASE_URL"]) as session:
        session.add(JobExecutionHistory(job_name="match_fetcher", job_type="MATCH_FETCHER", status="RATE_LIMITED",
                                        started_at=now - timedelta(minutes=3), finished_at=now, duration_ms=1234,
                                        total_processed=4, items_created=7, metrics={}))
    crashed = await _crash_a_run("ban-checker")

    response = await api.get("/api/v1/jobs/status/overview")
    assert response.status_code == 200
    jobs = {j["id"]: j for j in response.json()["jobs"]}
    assert {j["family"] for j in jobs.values()} == {"profiles", "riot", "jobqueue", "brands", "crypto"}
    assert set(FIXED) <= set(jobs)
    assert jobs[f"brand-job-{created['id']}"]["schedule"] == "0 9 * * *"
    queue = jobs["scheduled-job-PurgeExpiredRegistrationsJob"]
    assert (queue["family"], queue["timezone"], queue["active"]) == ("jobqueue", "Europe/Madrid", True)
    fetcher = jobs["match-fetcher"]
    assert fetcher["last_run"]["status"] == "RATE_LIMITED"
    assert fetcher["last_run"]["duration_ms"] == 1234 and fetcher["last_run"]["counts"]["created"] == 7
    assert (fetcher["runs_24h"], fetcher["rate_limited_24h"], fetcher["failures_24h"]) == (1, 1, 0)
    ban = jobs["ban-checker"]
    assert ban["last_run"]["status"] == "CRASHED" and ban["last_run"]["flow_run_id"] == crashed
    assert ban["last_run"]["flow_run_url"].endswith(f"/runs/flow-run/{crashed}")
    assert (ban["failures_24h"], ban["crashed_24h"]) == (1, 1)
    for job in jobs.values():
        assert {"schedule", "timezone", "active", "next_run", "last_run", "runs_24h", "drift"} <= set(job)
    # The next run is Prefect's earliest Scheduled run of the deployment, never one made up
    # from the cron (runs left Scheduled by earlier tests of the session may be there or not).
    async with get_client() as client:
        for job_id in ("smurf-analyzer", "ban-checker", "price-collection"):
            dep = await read_deployment_or_none(client, FIXED[job_id].deployment)
            expected = (await next_scheduled_runs(client, [dep.id])).get(dep.id) if dep else None
            got = jobs[job_id]["next_run"]
            assert (datetime.fromisoformat(got) if got else None) == expected, job_id
            if expected is None and dep is None:
                assert "no_scheduled_run" in [a["kind"] for a in jobs[job_id]["alarms"]], jobs[job_id]

    again = (await api.get("/api/v1/jobs/status/overview?family=riot")).json()["jobs"]
    assert {j["family"] for j in again} == {"riot"}
    assert next(j for j in again if j["id"] == "ban-checker")["crashed_24h"] == 1  # recorded once


async def test_executions_are_paged_and_filtered_by_status_and_time(api, brand_env):
    now = utcnow()
    with session_scope(brand_env["DATABASE_URL"]) as session:
        for i, status in enumerate(["SUCCESS", "FAILED", "SUCCESS", "PARTIAL", "SUCCESS"]):
            session.add(JobExecutionHistory(job_name="price_collection", job_type="PRICE_COLLECTION", status=status,
                                            started_at=now - timedelta(hours=i), finished_at=now - timedelta(hours=i),
                                            duration_ms=100 + i, metrics={}))
    page = (await api.get("/api/v1/jobs/price-collection/executions?limit=2&offset=1")).json()
    assert page["total"] == 5 and [r["duration_ms"] for r in page["items"]] == [101, 102]
    ok = (await api.get("/api/v1/jobs/price-collection/executions", params={"status": "SUCCESS"})).json()
    assert ok["total"] == 3
    since = (now - timedelta(hours=1, minutes=30)).isoformat()
    recent = (await api.get("/api/v1/jobs/price-collection/executions", params={"since": since})).json()
    assert recent["total"] == 2
    bad = await api.get("/api/v1/jobs/price-collection/executions", params={"status": "DONE"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("status:")
    assert (await api.get("/api/v1/jobs/no-such-job/executions")).status_code == 404


async def test_trigger_is_refused_when_inactive_or_at_the_concurrency_limit(api, brand_env):
    assert (await api.put("/api/v1/jobs/ban-checker/config", json={"active": False})).status_code == 200
    response = await api.post("/api/v1/jobs/ban-checker/trigger")
    assert response.status_code == 409 and "inactive" in response.json()["detail"]
    async with get_client() as client:  # price-collection allows one run at a time
        from prefect_api import deployment_id

        dep = await deployment_id(client, FIXED["price-collection"].flow, "price-collection")
        run = await client.create_flow_run_from_deployment(dep)
        await client.set_flow_run_state(run.id, Running(), force=True)
    try:
        response = await api.post("/api/v1/jobs/price-collection/trigger")
        assert response.status_code == 409 and "concurrency limit" in response.json()["detail"]
    finally:
        async with get_client() as client:
            await client.delete_flow_run(run.id)


async def test_seed_004_commands_verbatim_and_a_trigger_that_completes(api, brand_env, runner):
    first = await api.post("/api/v1/jobs/collect-top-coins", json={"limit": 10},
                           headers={"Content-Type": "application/json"})
    second = await api.post("/api/v1/jobs/collect-top-coins", json={"limit": 10})
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    one, two = first.json(), second.json()
    assert one["success"] and one["metrics"]["items_processed"] == 10 and one["metrics"]["items_created"] == 10
    assert two["metrics"]["items_created"] == 0 and two["metrics"]["items_updated"] == 10
    assert two["flow_run_url"].endswith(two["flow_run_id"])
    with session_scope(brand_env["DATABASE_URL"]) as session:
        assert session.execute(text(SEED_DUPLICATES)).all() == []
    prices = await api.post("/api/v1/jobs/collect-prices", json={"limit": 5})
    assert prices.status_code == 200 and prices.json()["job_name"] == "price_collection"
    started = await api.post("/api/v1/jobs/collect-contract-addresses?wait=false", json={"limit": 3})
    assert started.status_code == 202 and started.json()["flow_run_id"]

    triggered = await api.post("/api/v1/jobs/smurf-analyzer/trigger", json={"parameters": {}})
    assert triggered.status_code == 202
    flow_run_id = triggered.json()["flow_run_id"]
    from prefect_api import wait_for_flow_run

    for run_id in (flow_run_id, started.json()["flow_run_id"]):
        run = await wait_for_flow_run(uuid.UUID(run_id), 120)
        assert run.state is not None and run.state.is_completed(), run.state
    runs = (await api.get("/api/v1/jobs/smurf-analyzer/executions")).json()
    assert runs["items"][0]["flow_run_id"] == flow_run_id and runs["items"][0]["status"] == "SUCCESS"
    trends = (await api.get("/api/v1/trends/runs?days=1")).json()["jobs"]
    assert len(trends["top-coins-collection"]) == 2 and "duration_ms" in trends["smurf-analyzer"][0]
    coins = (await api.get("/api/v1/trends/coin-prices?days=1")).json()["coins"]
    assert any(points for points in coins.values())


async def test_trends_quota_burn_and_brand_scores(api, brand_env):
    from core.profiles import quota as quota_ledger
    from core.profiles.models import ApiQuota
    from core.settings import get_settings

    now = utcnow()
    with session_scope(brand_env["DATABASE_URL"]) as session:
        period = quota_ledger.current_period(session, get_settings().cron)  # the reset schedule's period
        session.add(ApiQuota(provider="rapidapi", period=period, monthly_limit=500, calls_used=100, reserved=0))
        session.add(JobExecutionHistory(job_name="profile_fetcher", job_type="PROFILE_FETCHER", status="SUCCESS",
                                        started_at=now, finished_at=now, duration_ms=5, quota_remaining=400,
                                        metrics={}))
    quota = (await api.get("/api/v1/trends/quota")).json()
    assert (quota["monthly_limit"], quota["used"], quota["remaining"]) == (500, 100, 400)
    assert quota["rate_per_day"] > 0 and quota["runs_out_on"] >= now.date().isoformat()
    assert quota["daily"] == [{"date": now.date().isoformat(), "used": 100}]
    assert quota["period"] == period and quota["period_start"].startswith(period[:10])
    assert (await api.get("/api/v1/trends/quota?period=2026-13")).status_code == 422
    assert (await api.get("/api/v1/trends/quota?period=2026-02-30T00:00Z")).status_code == 422
    earlier = (await api.get("/api/v1/trends/quota?period=2020-01-01T00:00Z")).json()
    assert (earlier["period"], earlier["monthly_limit"]) == ("2020-01-01T00:00Z", None)
    scores = (await api.get("/api/v1/trends/brand-scores")).json()
    assert scores["brands"] == {} or isinstance(scores["brands"], dict)


async def test_a_tracked_player_is_added_by_riot_id(api, riot_env, riot_api_sandbox):
    from core.riot.models import RiotPlayer
    from sandbox.riot import puuid_of

    response = await api.post("/api/v1/riot/tracked-players", json={"riot_id": "Zed Main#EUW", "platform": "euw1"})
    assert response.status_code == 201, response.text
    assert response.json() | {"created": True} == {"puuid": puuid_of("Zed Main#EUW"), "game_name": "Zed Main",
                                                   "tag_line": "EUW", "platform": "euw1", "is_tracked": True,
                                                   "created": True}
    again = await api.post("/api/v1/riot/tracked-players", json={"riot_id": "Zed Main#EUW", "platform": "euw1"})
    assert again.status_code == 201 and again.json()["created"] is False
    bad = await api.post("/api/v1/riot/tracked-players", json={"riot_id": "NoTagHere", "platform": "na1"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("riot_id:")
    bad = await api.post("/api/v1/riot/tracked-players", json={"riot_id": "Some One#NA1", "platform": "moon"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("platform:")
    riot_api_sandbox.update_knobs(banned_puuids=[puuid_of("Ghost#NA1")])  # type: ignore[attr-defined]
    try:
        missing = await api.post("/api/v1/riot/tracked-players", json={"riot_id": "Ghost#NA1", "platform": "na1"})
    finally:
        riot_api_sandbox.reset()  # type: ignore[attr-defined]
    assert missing.status_code == 404 and missing.json()["detail"].startswith("riot_id: no Riot account")
    with session_scope(riot_env["DATABASE_URL"]) as session:
        assert [p.is_tracked for p in session.execute(select(RiotPlayer)).scalars()] == [True]


async def test_an_unreachable_prefect_api_is_a_503_naming_it(api, brand_env):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        response = await api.get("/api/v1/jobs/status/overview")
    assert response.status_code == 503 and response.json()["detail"].startswith("Prefect API unreachable")


async def test_next_run_and_late_runs_are_prefects_own_and_alarms_are_recorded_and_mailed_once(
        api, brand_env, smtp_sink, monkeypatch):
    """The next run is the flow run Prefect scheduled; a run left Late beyond the threshold is
    an alarm, e-mailed once by the check and resolved when the run is gone."""
    from prefect.states import Scheduled

    from core.settings import get_settings
    from tests.conftest import reload_settings

    monkeypatch.setenv("ALERTS_LATE_AFTER_SECONDS", "10")
    reload_settings()
    now = utcnow()
    async with get_client() as client:
        from prefect_api import deployment_id

        dep = await deployment_id(client, FIXED["ban-checker"].flow, "ban-checker")
        upcoming = await client.create_flow_run_from_deployment(
            dep, state=Scheduled(scheduled_time=now + timedelta(hours=2)))
        late = await client.create_flow_run_from_deployment(
            dep, state=Scheduled(scheduled_time=now - timedelta(minutes=3)).model_copy(update={"name": "Late"}))
    assert get_settings().alerts.late_after_seconds == 10
    smtp_sink.clear()
    try:
        job = next(j for j in (await api.get("/api/v1/jobs/status/overview")).json()["jobs"]
                   if j["id"] == "ban-checker")
        assert job["next_run"] is not None
        assert abs((datetime.fromisoformat(job["next_run"]) - (now + timedelta(hours=2))).total_seconds()) < 1
        assert job["late_since"] is not None and job["health"] == "alarm"
        assert [a["kind"] for a in job["alarms"]] == ["late_run"], job["alarms"]
        assert NO_SCHEDULED_RUN not in job["drift"]

        first = (await api.post("/api/v1/alerts/check", json={"trigger": "test"})).json()
        again = (await api.post("/api/v1/alerts/check")).json()
        mine = [a for a in first["open"] if a["job_id"] == "ban-checker"]
        assert [a["kind"] for a in mine] == ["late_run"] and mine[0]["notified_at"] is not None
        assert [a["id"] for a in again["open"] if a["job_id"] == "ban-checker"] == [mine[0]["id"]]
        mails = [m for m in smtp_sink.messages if "ban-checker" in m["Subject"]]
        assert len(mails) == 1, [m["Subject"] for m in smtp_sink.messages]
        assert "ALARM" in mails[0]["Subject"] and "late_run" in mails[0]["Subject"]
        assert TOKEN not in mails[0].as_string()
    finally:
        async with get_client() as client:
            await client.delete_flow_run(late.id)
            await client.delete_flow_run(upcoming.id)
    cleared = (await api.post("/api/v1/alerts/check")).json()
    assert not [a for a in cleared["open"] if a["job_id"] == "ban-checker" and a["kind"] == "late_run"]
    history = (await api.get("/api/v1/alerts", params={"job_id": "ban-checker"})).json()
    assert history[0]["kind"] == "late_run" and history[0]["resolved_at"] is not None


async def test_a_crypto_schedule_changed_in_the_environment_after_the_first_deploy_is_drift(
        api, brand_env, monkeypatch):
    """Issue 22 item 7: seed 004 configures jobs by environment; once the config row exists it
    wins, and the overview says the two disagree (with the command that applies the change)."""
    from tests.conftest import reload_settings

    with job_configurations_kept(brand_env["DATABASE_URL"]):
        before = {j["id"]: j for j in (await api.get("/api/v1/jobs/status/overview?family=crypto")).json()["jobs"]}
        assert not any("settings (" in d for d in before["top-coins-collection"]["drift"])
        monkeypatch.setenv("TOP_COINS_COLLECTION_SCHEDULE", "0 6 * * *")
        reload_settings()
        jobs = {j["id"]: j for j in (await api.get("/api/v1/jobs/status/overview?family=crypto")).json()["jobs"]}
        top = jobs["top-coins-collection"]
        assert top["schedule"] == before["top-coins-collection"]["schedule"]  # the row still wins
        [drift] = [d for d in top["drift"] if d.startswith("settings (")]
        assert "TOP_COINS_COLLECTION_SCHEDULE" in drift and "'0 6 * * *'" in drift
        assert "jobpipes config top-coins-collection --schedule '0 6 * * *' --active" in drift
        assert not any(d.startswith("settings (") for d in jobs["price-collection"]["drift"])
