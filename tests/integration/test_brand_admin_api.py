"""The seed-003 admin API against PostgreSQL and a real Prefect API (the test harness server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from core.brands import repo
from core.brands.models import JobRunStatus
from core.brands.schemas import COLLECTORS
from core.cron import next_run
from core.db import session_scope
from core.errors import ConfigError
from deployments.api.app import create_app
from deployments.control import brand_admin
from flows.brands import BRAND_JOB_DEPLOYMENT, brand_job
from tests.integration.test_brand_jobs import make_brand

TOKEN = "admin-token-for-tests"


@pytest.fixture
async def api(brand_env):
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://admin",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


async def prefect_schedules() -> dict[str, object]:
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(BRAND_JOB_DEPLOYMENT)
        return {s.slug: s for s in await client.read_deployment_schedules(deployment.id)}


def body(brand: str, customer: str, **changes: object) -> dict[str, object]:
    return {"brand_id": brand, "customer_id": customer, "job_type": "data_collection_and_scoring",
            "cron_expression": "0 9 * * *", "timezone": "Europe/Paris", "is_active": True,
            "metadata": {"collectors": ["chatgpt", "perplexity"], "parallel": True, "positionLimit": 20}} | changes


async def test_every_route_requires_the_bearer_token(api):
    for token in (None, "wrong-token"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(transport=api._transport, base_url="http://admin", headers=headers)
        async with client:
            for method, path in (("GET", "/api/admin/scheduled-jobs"), ("GET", "/api/admin/job-runs"),
                                 ("POST", "/api/admin/scheduled-jobs"), ("POST", "/api/admin/brands"),
                                 ("GET", "/api/admin/brands"), ("GET", f"/api/admin/brands/{uuid.uuid4()}")):
                response = await client.request(method, path, json={})
                assert response.status_code == 401, (method, path)
                assert TOKEN not in response.text


@pytest.mark.parametrize(("changes", "field"), [
    ({"cron_expression": "61 * * * *"}, "cron_expression"),
    ({"cron_expression": "0 9 * *"}, "cron_expression"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "posixrules"}, "timezone"),  # zoneinfo knows it, Prefect schedules do not
    ({"cron_expression": "0 0 31 2 *"}, "never fires"),
    ({"metadata": {"timeoutSeconds": "Infinity"}}, "metadata.timeoutSeconds"),
    ({"metadata": {"collectors": ["bard"]}}, "metadata.collectors"),
    ({"metadata": {"sentimentLimit": -1}}, "metadata.sentimentLimit"),
    ({"brand_id": str(uuid.uuid4())}, "brand_id"),
    ({"customer_id": str(uuid.uuid4())}, "customer_id"),
    ({"job_type": "scrape"}, "job_type"),
])
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(api, brand_env, changes, field):
    brand_id, customer_id = make_brand(brand_env["DATABASE_URL"])
    response = await api.post("/api/admin/scheduled-jobs", json=body(brand_id, customer_id, **changes))
    assert response.status_code == 422
    assert field in response.text
    assert (await api.get("/api/admin/scheduled-jobs")).json() == []


async def test_create_update_trigger_delete_keep_prefect_in_step(api, brand_env):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    other_brand, other_customer = make_brand(url, topics={"t": ["q"]})

    created = await api.post("/api/admin/scheduled-jobs", json=body(brand_id, customer_id))
    assert created.status_code == 201, created.text
    job = created.json()
    await api.post("/api/admin/scheduled-jobs", json=body(other_brand, other_customer, job_type="scoring"))

    # The Prefect deployment schedule carries the cron, the timezone and the run parameters.
    schedule = (await prefect_schedules())[f"brand-job-{job['id']}"]
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("0 9 * * *", "Europe/Paris", True)
    assert schedule.parameters == {"brand_id": brand_id, "customer_id": customer_id,
                                   "job_type": "data_collection_and_scoring", "scheduled_job_id": job["id"],
                                   "metadata": {"collectors": ["chatgpt", "perplexity"], "parallel": True,
                                                "positionLimit": 20, "sentimentLimit": 50}}
    # 09:00 in Paris, in UTC: the next run time is timezone-aware.
    next_time = datetime.fromisoformat(job["next_run_time"])
    assert next_time.astimezone(UTC).hour in (7, 8) and next_time.minute == 0

    listed = (await api.get("/api/admin/scheduled-jobs", params={"customer_id": customer_id})).json()
    assert [j["id"] for j in listed] == [job["id"]]
    # titled by the brand and job type, as the page shows the job
    assert job["title"] == listed[0]["title"] == "Acme CRM · data_collection_and_scoring"
    assert listed[0]["brand_name"] == "Acme CRM"
    assert len((await api.get("/api/admin/scheduled-jobs")).json()) == 2
    assert (await api.get(f"/api/admin/scheduled-jobs/{job['id']}")).json()["prefect_active"] is True

    updated = await api.put(f"/api/admin/scheduled-jobs/{job['id']}",
                            json={"cron_expression": "30 14 * * 1-5", "timezone": "America/New_York",
                                  "is_active": False})
    assert updated.status_code == 200 and updated.json()["next_run_time"] is None
    schedule = (await prefect_schedules())[f"brand-job-{job['id']}"]
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "30 14 * * 1-5", "America/New_York", False)
    bad = await api.put(f"/api/admin/scheduled-jobs/{job['id']}", json={"cron_expression": "every day"})
    assert bad.status_code == 422 and "cron_expression" in bad.text
    assert (await prefect_schedules())[f"brand-job-{job['id']}"].schedule.cron == "30 14 * * 1-5"

    # Trigger: a pending job run and a flow run of the deployment with the same parameters.
    triggered = await api.post(f"/api/admin/scheduled-jobs/{job['id']}/trigger")
    assert triggered.status_code == 202
    run = triggered.json()
    assert run["flow_run_url"].endswith(f"/runs/flow-run/{run['flow_run_id']}")  # as the fixed jobs' trigger
    async with get_client() as client:
        [flow_run] = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[uuid.UUID(run["flow_run_id"])])))
    assert flow_run.parameters["job_run_id"] == run["job_run_id"]
    assert flow_run.parameters["brand_id"] == brand_id and flow_run.state.is_scheduled()
    pending = (await api.get("/api/admin/job-runs", params={"brand_id": brand_id})).json()
    assert [(r["id"], r["status"]) for r in pending] == [(run["job_run_id"], "pending")]
    assert pending[0]["flow_run_url"] == run["flow_run_url"]

    # What a worker does with that flow run: run the flow with its parameters.
    await brand_job(**flow_run.parameters)
    done = (await api.get(f"/api/admin/job-runs/{run['job_run_id']}")).json()
    assert done["status"] == "completed" and done["metrics"]["data_collection"]["successful_executions"] == 2 * 3
    assert done["metrics"]["scoring"]["answers_position_scored"] == 6
    completed = (await api.get("/api/admin/job-runs", params={"customer_id": customer_id, "status": "completed",
                                                               "limit": 5})).json()
    assert [r["id"] for r in completed] == [run["job_run_id"]]
    assert (await api.get("/api/admin/job-runs", params={"status": "done"})).status_code == 422

    assert (await api.delete(f"/api/admin/scheduled-jobs/{job['id']}")).status_code == 204
    assert f"brand-job-{job['id']}" not in await prefect_schedules()
    assert (await api.get(f"/api/admin/scheduled-jobs/{job['id']}")).status_code == 404
    assert (await api.delete(f"/api/admin/scheduled-jobs/{job['id']}")).status_code == 404


async def test_job_runs_are_paged_with_offset_and_a_total(api, brand_env):
    url = brand_env["DATABASE_URL"]
    brand_id, customer_id = make_brand(url)
    other_brand, _ = make_brand(url, topics={"t": ["q"]})
    with session_scope(url) as session:
        made = [repo.create_job_run(session, brand_id=uuid.UUID(brand_id), customer_id=uuid.UUID(customer_id),
                                    job_type="scoring", metadata={}).id for _ in range(5)]
        repo.finish_job_run(session, made[0], status=JobRunStatus.FAILED, metrics={}, error="boom")
    newest_first = [str(r) for r in reversed(made)]

    pages, offset = [], 0
    while True:
        answer = await api.get("/api/admin/job-runs", params={"brand_id": brand_id, "limit": 2, "offset": offset})
        assert answer.status_code == 200 and answer.headers["X-Total-Count"] == "5"
        if not answer.json():
            break
        pages.append([r["id"] for r in answer.json()])
        offset += 2
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]

    # filters count as they select; the old calls (no offset) answer as before
    failed = await api.get("/api/admin/job-runs", params={"brand_id": brand_id, "status": "failed"})
    assert [r["id"] for r in failed.json()] == [str(made[0])] and failed.headers["X-Total-Count"] == "1"
    every = await api.get("/api/admin/job-runs")
    assert [r["id"] for r in every.json()] == newest_first and every.headers["X-Total-Count"] == "5"
    assert (await api.get("/api/admin/job-runs", params={"brand_id": other_brand})).headers["X-Total-Count"] == "0"
    for bad in ({"offset": -1}, {"offset": "x"}, {"limit": 0}):
        refused = await api.get("/api/admin/job-runs", params=bad)
        assert refused.status_code == 422 and next(iter(bad)) in refused.text, bad

    # the control layer: the same page with its envelope
    page = await brand_admin.page_job_runs(customer_id=customer_id, limit=3, offset=3)
    assert (page["total"], page["limit"], page["offset"]) == (5, 3, 3)
    assert [r["id"] for r in page["items"]] == newest_first[3:]
    assert [r["id"] for r in await brand_admin.list_job_runs(brand_id=brand_id, limit=1, offset=1)] == newest_first[1:2]
    with pytest.raises(ConfigError, match="^offset: "):
        await brand_admin.page_job_runs(offset=-1)


async def test_topics_and_queries_of_a_brand(api, brand_env):
    brand_id, _ = make_brand(brand_env["DATABASE_URL"])
    answer = (await api.get(f"/api/admin/brands/{brand_id}/topics-queries")).json()
    assert answer["name"] == "Acme CRM"
    assert {t["name"]: [q["query_text"] for q in t["queries"]] for t in answer["topics"]} == {
        "crm software": ["best CRM for a small business", "which CRM has the best support"],
        "pricing": ["cheapest CRM with email automation"]}
    assert (await api.get(f"/api/admin/brands/{uuid.uuid4()}/topics-queries")).status_code == 404
    assert (await api.get("/api/admin/brands/nope/topics-queries")).status_code == 422


async def test_a_brand_is_created_with_topics_queries_and_competitors_then_listed(api, brand_env):
    customer = str(uuid.uuid4())
    brand = {"customer_id": customer, "name": " Acme CRM ", "competitors": ["Globex", "Initech", "Globex"],
             "topics": [{"name": "crm software", "queries": ["best CRM for a small business"]},
                        {"name": "pricing", "queries": ["cheapest CRM with email automation"]},
                        {"name": "crm software", "queries": ["which CRM has the best support"]}]}
    created = await api.post("/api/admin/brands", json=brand)
    assert created.status_code == 201, created.text
    made = created.json()
    assert (made["name"], made["customer_id"], made["competitors"]) == ("Acme CRM", customer, ["Globex", "Initech"])
    assert {t["name"]: [q["query_text"] for q in t["queries"]] for t in made["topics"]} == {
        "crm software": ["best CRM for a small business", "which CRM has the best support"],
        "pricing": ["cheapest CRM with email automation"]}
    assert (made["topics_count"], made["queries_count"], made["schedules"]) == (2, 3, [])
    # What the collectors will ask: the topics-queries view and the job's own query list agree.
    assert (await api.get(f"/api/admin/brands/{made['id']}/topics-queries")).json()["topics"] == made["topics"]

    other, _ = make_brand(brand_env["DATABASE_URL"])
    job = (await api.post("/api/admin/scheduled-jobs", json=body(made["id"], customer))).json()
    listed = (await api.get("/api/admin/brands", params={"customer_id": customer})).json()
    assert [(b["id"], b["topics_count"], b["queries_count"], [s["id"] for s in b["schedules"]]) for b in listed] == [
        (made["id"], 2, 3, [job["id"]])]
    assert {b["id"] for b in (await api.get("/api/admin/brands")).json()} == {made["id"], other}
    shown = (await api.get(f"/api/admin/brands/{made['id']}")).json()
    assert [s["cron_expression"] for s in shown["schedules"]] == ["0 9 * * *"]
    await api.delete(f"/api/admin/scheduled-jobs/{job['id']}")

    again = await api.post("/api/admin/brands", json=brand)
    assert again.status_code == 409 and again.json()["detail"].startswith("name:")
    for changes, field in (({"customer_id": "x"}, "customer_id"), ({"name": "  "}, "name"),
                           ({"name": "Nul\u0000"}, "name"), ({"competitors": ["Other"]}, "competitors"),
                           ({"topics": [{"name": "", "queries": []}]}, "topics"),
                           ({"topics": [{"name": "a", "queries": ["q"]}, {"name": "b", "queries": ["q"]}]}, "queries")):
        bad = await api.post("/api/admin/brands", json=brand | {"name": "Other"} | changes)
        assert bad.status_code == 422 and bad.json()["detail"].startswith(f"{field}:"), (changes, bad.text)
    assert (await api.post("/api/admin/brands", json=brand | {"colour": "red"})).status_code == 422
    assert len((await api.get("/api/admin/brands")).json()) == 2  # nothing else was created
    assert (await api.get(f"/api/admin/brands/{uuid.uuid4()}")).status_code == 404
    assert (await api.get("/api/admin/brands", params={"customer_id": "nope"})).status_code == 422


def test_next_run_times_are_timezone_aware_across_daylight_saving():
    # US daylight saving starts on 2026-03-08: 09:00 New York is 14:00 UTC before, 13:00 after.
    after = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    assert next_run("0 9 * * *", "America/New_York", after) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert next_run("0 9 * * *", "America/New_York", datetime(2026, 3, 7, 1, 0, tzinfo=UTC)) == datetime(
        2026, 3, 7, 14, 0, tzinfo=UTC)
    assert next_run("0 9 * * *", "Asia/Kolkata", after) == datetime(2026, 3, 8, 3, 30, tzinfo=UTC)
    assert set(COLLECTORS) == {"chatgpt", "google_aio", "perplexity"}
