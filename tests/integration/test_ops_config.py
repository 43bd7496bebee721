"""Each job's configuration through the operations API: the config tables as the source of
every schedule, applied to Prefect at once; bad input; the first deploy's defaults; brand and
job-queue jobs through the same routes. PostgreSQL and the Prefect test server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.schedules import CronSchedule
from prefect.server.database import provide_database_interface
from prefect.server.models.deployments import (
    _generate_scheduled_flow_runs,
    _insert_scheduled_flow_runs,
)
from sqlalchemy import select, text

from core.cron import fires_at
from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.jobqueue.examples import PurgeExpiredRegistrationsJob
from deployments.control.catalog import get_job
from deployments.control.overview import NO_SCHEDULED_RUN
from deployments.control.scheduled_jobs import add_or_update_scheduled_job
from tests.integration.test_brand_admin_api import body
from tests.integration.test_brand_jobs import make_brand
from tests.integration.test_ops_api import TOKEN, _client, job_configurations_kept

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def api(brand_env) -> AsyncIterator[httpx.AsyncClient]:
    with job_configurations_kept(brand_env["DATABASE_URL"]):
        async with _client({"Authorization": f"Bearer {TOKEN}"}) as client:
            yield client


async def test_a_config_change_reaches_the_prefect_deployment_at_once(api, brand_env):
    response = await api.put("/api/v1/jobs/match-fetcher/config", json={
        "schedule": "*/7 * * * *", "timezone": "Europe/Paris", "active": False,
        "config": {"discovered_players_per_run": 3, "matches_per_player_per_run": 5,
                   "target_matches_per_player": 9, "platform": "euw1"}})
    assert response.status_code == 200, response.text
    assert response.json()["config"]["platform"] == "euw1"
    async with get_client() as client:
        dep = await client.read_deployment_by_name("match-fetcher/match-fetcher")
        [schedule] = await client.read_deployment_schedules(dep.id)
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "*/7 * * * *", "Europe/Paris", False)
    with session_scope(brand_env["DATABASE_URL"]) as session:
        row = session.execute(select(JobConfiguration).where(JobConfiguration.job_type == "MATCH_FETCHER")).scalar_one()
        assert (row.schedule, row.timezone, row.is_active, row.config_json["platform"]) == (
            "*/7 * * * *", "Europe/Paris", False, "euw1")
    # the seed's six-field cron; the crypto limit becomes the deployment's default parameter
    response = await api.put("/api/v1/jobs/top-coins-collection/config",
                             json={"schedule": "0 30 2 * * *", "config": {"limit": 25}})
    assert response.json()["schedule"] == "30 2 * * *"
    async with get_client() as client:
        dep = await client.read_deployment_by_name("top-coins-collection/top-coins-collection")
    assert dep.parameters == {"limit": 25} and dep.schedules[0].schedule.cron == "30 2 * * *"
    # a pause in the Prefect UI shows as drift; the next change through the API resumes it
    async with get_client() as client:
        from prefect_api import update_deployment

        await update_deployment(client, dep.id, paused=True)
    jobs = {j["id"]: j for j in (await api.get("/api/v1/jobs/status/overview?family=crypto")).json()["jobs"]}
    assert jobs["top-coins-collection"]["drift"] == ["deployment paused in Prefect while active here"]
    assert (await api.put("/api/v1/jobs/top-coins-collection/config", json={"active": True})).status_code == 200
    jobs = {j["id"]: j for j in (await api.get("/api/v1/jobs/status/overview?family=crypto")).json()["jobs"]}
    # Applied again: nothing differs from the row. The test harness runs no scheduler: unless an
    # earlier test left a run Scheduled, Prefect holds none, and the overview says so as drift
    # (never a next run made up from the cron).
    top = jobs["top-coins-collection"]
    assert [d for d in top["drift"] if d != NO_SCHEDULED_RUN] == []
    assert (NO_SCHEDULED_RUN in top["drift"]) == (top["next_run"] is None), top
    got = (await api.get("/api/v1/jobs/profile-fetcher/config")).json()
    assert got["source"] == "cron_job_configs" and got["config"]["batch_size"] >= 1


SMURF = "/api/v1/jobs/smurf-analyzer/config"
DAILY = "17 3 * * *"  # in Asia/Kolkata: 21:47 UTC


async def _the_schedulers_runs(dep_id):
    """Start times of the deployment's runs Prefect's scheduler made that still wait (a run
    started by hand in an earlier test waits *Scheduled* too, and is not one)."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])), limit=200)
    return [r.expected_start_time for r in runs if r.state_name == "Scheduled" and r.auto_scheduled]


async def _scheduler_step(dep_id, hours=1, min_runs=3, max_runs=100):
    """What one pass of Prefect's scheduler computes for the deployment from its schedules now
    (``_generate_scheduled_flow_runs``); inserting it is the pass's second step."""
    db = provide_database_interface()
    now = datetime.now(UTC)
    async with db.session_context() as session:
        computed = await _generate_scheduled_flow_runs(db, session, dep_id, start_time=now,
                                                       end_time=now + timedelta(hours=hours),
                                                       min_time=timedelta(hours=1), min_runs=min_runs, max_runs=max_runs)

    async def insert():
        async with db.session_context(begin_transaction=True) as session:
            return await _insert_scheduled_flow_runs(session=session, runs=computed)
    return computed, insert


@pytest.mark.parametrize("second_change", ["operations API", "elsewhere"])
async def test_runs_the_scheduler_computed_from_the_old_schedule_are_dropped(api, brand_env, monkeypatch,
                                                                             second_change):
    """Prefect's scheduler reads a deployment's schedules, then inserts their runs in another
    transaction: a pass that read the old schedule just before a change inserts the old
    schedule's runs just after Prefect deleted them. Played with the scheduler's own two steps
    around the change: the old schedule's runs are gone within seconds, and a run the new
    schedule fires survives every later sweep, the first change's included, when the second
    change came through the API or from elsewhere (the Prefect UI, another process)."""
    import prefect_api

    monkeypatch.setattr(prefect_api, "SETTLE_AFTER_SECONDS", (0.5, 1.0, 5.0))  # the last after the new run
    for cron in ("*/10 * * * *", "*/2 * * * *"):  # the deployment has a schedule: the second PUT changes it
        assert (await api.put(SMURF, json={"schedule": cron, "timezone": "UTC", "active": True})).status_code == 200
    async with get_client() as client:
        dep = await client.read_deployment_by_name(get_job("smurf-analyzer").deployment)
    old, insert_old = await _scheduler_step(dep.id)
    second = time.monotonic()
    assert len(old) >= 29, len(old)
    if second_change == "operations API":
        assert (await api.put(SMURF, json={"schedule": DAILY, "timezone": "Asia/Kolkata"})).status_code == 200
    else:
        async with get_client() as client:
            [schedule] = await client.read_deployment_schedules(dep.id)
            await client.update_deployment_schedule(dep.id, schedule.id, active=True,
                                                    schedule=CronSchedule(cron=DAILY, timezone="Asia/Kolkata"))
    assert len(await insert_old()) == len(old)
    if second_change == "operations API":  # its own sweeps drop them within a second
        for _ in range(100):
            if all(fires_at(DAILY, "Asia/Kolkata", at) for at in await _the_schedulers_runs(dep.id)):
                break
            await asyncio.sleep(0.1)
        assert all(fires_at(DAILY, "Asia/Kolkata", at) for at in await _the_schedulers_runs(dep.id))
    new, insert_new = await _scheduler_step(dep.id, hours=48, min_runs=1, max_runs=1)
    await insert_new()
    assert time.monotonic() < second + 4.5, "too slow to tell: the first change's last sweep is behind us"
    await asyncio.sleep(second + 5.5 - time.monotonic())  # past every later sweep of both changes
    left = await _the_schedulers_runs(dep.id)
    assert [at for at in left if fires_at(DAILY, "Asia/Kolkata", at)] == [r["expected_start_time"] for r in new] != []
    if second_change == "elsewhere":  # nobody here knew of the daily cron: the first change's sweeps judged by it
        assert left == [r["expected_start_time"] for r in new], left


@pytest.mark.parametrize(("path", "payload", "status", "field"), [
    ("/api/v1/jobs/smurf-analyzer/config", {"schedule": "61 * * * *"}, 422, "schedule"),
    ("/api/v1/jobs/smurf-analyzer/config", {"schedule": "0 0 31 2 *"}, 422, "schedule"),
    ("/api/v1/jobs/smurf-analyzer/config", {"timezone": "Mars/Olympus_Mons"}, 422, "timezone"),
    ("/api/v1/jobs/smurf-analyzer/config", {"config": {"unanalyzed_players_per_run": "many"}}, 422,
     "config.unanalyzed_players_per_run"),
    ("/api/v1/jobs/smurf-analyzer/config", {"config": {"min_matches_required": 5, "extra": 1,
                                                       "unanalyzed_players_per_run": 1}}, 422, "config.extra"),
    ("/api/v1/jobs/ban-checker/config", {"config": {"ban_check_days": 7, "max_checks_per_run": 5,
                                                    "platform": "moon1"}}, 422, "config.platform"),
    ("/api/v1/jobs/price-collection/config", {"config": {"limit": 0}}, 422, "config.limit"),
    ("/api/v1/jobs/nope/config", {"active": False}, 404, "job_id"),
    ("/api/v1/jobs/nope/trigger", {}, 404, "job_id"),
    ("/api/v1/jobs/top-coins-collection/trigger", {"parameters": {"limti": 3}}, 422, "parameters.limti"),
    ("/api/v1/jobs/collect-top-coins", {"limit": 0}, 422, "limit"),
    ("/api/v1/jobs/collect-prices", {"limit": "ten"}, 422, "limit"),
])
async def test_bad_input_names_the_field_and_writes_nothing(api, brand_env, path, payload, status, field):
    assert (await api.get("/api/v1/jobs/price-collection/config")).status_code == 200  # default rows written
    with session_scope(brand_env["DATABASE_URL"]) as session:
        before = session.execute(text("SELECT job_type, schedule, timezone, is_active, config_json::text "
                                      "FROM job_configurations ORDER BY job_type")).all()
    method = api.put if path.endswith("/config") else api.post
    response = await method(path, json=payload)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert field in (detail if isinstance(detail, str) else str(detail)), detail
    with session_scope(brand_env["DATABASE_URL"]) as session:
        after = session.execute(text("SELECT job_type, schedule, timezone, is_active, config_json::text "
                                     "FROM job_configurations ORDER BY job_type")).all()
    assert after == before


async def test_the_first_deploy_writes_the_defaults_and_later_ones_apply_the_rows(api, brand_env, monkeypatch):
    from core.profiles.models import CronJobConfig
    from deployments.control.configs import read_settings
    from deployments.deploy import apply
    from deployments.serve import build_deployments
    from tests.conftest import reload_settings

    monkeypatch.setenv("TOP_COINS_COLLECTION_SCHEDULE", "0 30 2 * * *")  # the seed's variables: defaults only
    monkeypatch.setenv("PRICE_COLLECTION_ENABLED", "false")
    reload_settings()
    with session_scope(brand_env["DATABASE_URL"]) as session:
        session.execute(JobConfiguration.__table__.delete().where(JobConfiguration.job_type.in_(
            ["TOP_COINS_COLLECTION", "PRICE_COLLECTION", "CONTRACT_ADDRESSES_COLLECTION"])))
        session.execute(CronJobConfig.__table__.delete())
    from core.settings import get_settings

    lines = await apply(get_settings())
    assert lines[0] == "config tables: 5 default row(s) written"
    rows = read_settings()
    assert (rows["top-coins-collection"].schedule, rows["price-collection"].active) == ("30 2 * * *", False)
    # an operator's change sticks: the variables no longer matter, every deploy applies the row
    assert (await api.put("/api/v1/jobs/top-coins-collection/config", json={"schedule": "5 5 * * *"})).status_code == 200
    async with get_client() as client:  # e.g. `prefect deploy` put prefect.yaml's schedule back
        from prefect_api import set_primary_schedule

        dep = await client.read_deployment_by_name("top-coins-collection/top-coins-collection")
        await set_primary_schedule(client, dep.id, cron="0 0 * * *", timezone="UTC", active=True)
    lines = await apply(get_settings())
    assert lines[0] == "config tables: 0 default row(s) written"
    assert "top-coins-collection/top-coins-collection: 5 5 * * * (UTC) active" in lines
    async with get_client() as client:
        dep = await client.read_deployment_by_name("top-coins-collection/top-coins-collection")
    assert dep.schedules[0].schedule.cron == "5 5 * * *"
    # deployments.serve schedules from the same rows
    served = {d.name: d for d in await asyncio.to_thread(build_deployments, get_settings(), read_settings())}
    assert served["top-coins-collection"].schedules[0].schedule.cron == "5 5 * * *"
    assert served["price-collection"].schedules[0].active is False


async def test_brand_and_queue_jobs_through_the_jobs_routes(api, brand_env):
    brand, customer = make_brand(brand_env["DATABASE_URL"])
    created = (await api.post("/api/admin/scheduled-jobs", json=body(brand, customer))).json()
    await asyncio.to_thread(add_or_update_scheduled_job, PurgeExpiredRegistrationsJob(), "0 3 * * *")
    brand_job, queue_job = f"brand-job-{created['id']}", "scheduled-job-PurgeExpiredRegistrationsJob"
    assert {j["id"] for j in (await api.get("/api/v1/jobs")).json()} >= {brand_job, queue_job}

    changed = await api.put(f"/api/v1/jobs/{brand_job}/config", json={"schedule": "30 6 * * *", "active": False})
    assert changed.status_code == 200 and (changed.json()["schedule"], changed.json()["active"]) == ("30 6 * * *", False)
    async with get_client() as client:
        dep = await client.read_deployment_by_name("brand-job/brand-job")
        [schedule] = [s for s in await client.read_deployment_schedules(dep.id) if s.slug == brand_job]
    assert (schedule.schedule.cron, schedule.active) == ("30 6 * * *", False)
    assert (await api.post(f"/api/v1/jobs/{brand_job}/trigger")).status_code == 409  # inactive
    assert (await api.put(f"/api/v1/jobs/{brand_job}/config", json={"active": True})).status_code == 200
    started = await api.post(f"/api/v1/jobs/{brand_job}/trigger")
    assert started.status_code == 202 and started.json()["job_run_id"]
    runs = (await api.get(f"/api/v1/jobs/{brand_job}/executions")).json()
    assert runs["total"] == 1 and runs["items"][0]["flow_run_id"] == started.json()["flow_run_id"]
    bad = await api.put(f"/api/v1/jobs/{brand_job}/config", json={"schedule": "61 * * * *"})
    assert bad.status_code == 422 and "cron_expression" in bad.json()["detail"]

    queue = await api.put(f"/api/v1/jobs/{queue_job}/config", json={"schedule": "0 4 * * *", "timezone": "Asia/Tokyo"})
    assert queue.status_code == 200 and queue.json()["timezone"] == "Asia/Tokyo"
    bad = await api.put(f"/api/v1/jobs/{queue_job}/config", json={"timezone": "Nowhere/City"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("timezone:")
    started = await api.post(f"/api/v1/jobs/{queue_job}/trigger")
    assert started.status_code == 202 and started.json()["parameters"] == {"name": "PurgeExpiredRegistrationsJob"}
    bad = await api.post(f"/api/v1/jobs/{queue_job}/trigger", json={"parameters": {"x": 1}})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("parameters:")
