"""The operator page in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium)
against the app served by uvicorn, with PostgreSQL and the Prefect test server behind it, at
1400 px as an operator sees it.

The brand page: create, edit, toggle, trigger (the pending run refreshes by itself to its
end), page through and delete a brand schedule, create a brand, forget the token. The jobs
page: the overview with brand jobs titled by brand, a job's configuration edited, the trends
charts (Chart.js) with sane axes for flat and single-point series and their empty states.
Screenshots go to .data/screenshots/ops-*.png. Without Chromium the tests are skipped, except
under CI=true where they fail.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prefect.client.orchestration import get_client
from sqlalchemy import select

from core.brands import repo
from core.brands.models import BrandScoreAggregate, JobRun, JobRunStatus
from core.crypto.models import Asset, AssetPrice
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.profiles.models import ApiQuota
from core.profiles.quota import current_period
from core.runs.models import JobExecutionHistory
from core.settings import get_settings
from deployments.api.app import create_app
from deployments.control import brand_admin, sync
from deployments.control.catalog import get_job
from flows.brands import BRAND_JOB_DEPLOYMENT, brand_job
from prefect_api import flow_run_url
from tests.conftest import free_port
from tests.integration.test_brand_admin_api import TOKEN
from tests.integration.test_brand_jobs import COMPETITORS, make_brand

pytestmark = pytest.mark.asyncio(loop_scope="session")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"
WIDTH = 1400
FLAT_PRICE, SINGLE_PRICE = 0.52, 140.0  # XRP's price never moves; SOL has one price so far


@pytest.fixture
async def server(brand_env) -> AsyncIterator[str]:
    """The app on a free port, served on this event loop (so it sees the Prefect test server)."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(run_wait_seconds=5), host="127.0.0.1", port=port,
                                       log_level="warning", lifespan="off"))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    await task


def seed_trends(url: str) -> tuple[str, str]:
    """Runs of a few jobs, this month's quota, three scored brand runs, coin prices (one flat, one
    with a single price); the brand and customer ids."""
    brand, customer = make_brand(url)
    now = utcnow()
    with session_scope(url) as session:
        for i in range(6):
            for job, status in (("price_collection", "SUCCESS"), ("match_fetcher", "RATE_LIMITED" if i == 2 else "SUCCESS"),
                                ("profile_fetcher", "FAILED" if i == 4 else "SUCCESS")):
                at = now - timedelta(hours=6 - i)
                session.add(JobExecutionHistory(job_name=job, job_type=job.upper(), status=status, started_at=at,
                                                finished_at=at, duration_ms=400 + 150 * i + len(job) * 10,
                                                quota_remaining=480 - 15 * i if job == "profile_fetcher" else None,
                                                metrics={}, total_processed=10))
        period = current_period(session, get_settings().cron)  # the quota reset schedule's current period
        session.add(ApiQuota(provider="rapidapi", period=period, monthly_limit=500, calls_used=90,
                             reserved=0))
        for k in range(3):
            run = repo.create_job_run(session, brand_id=uuid.UUID(brand), customer_id=uuid.UUID(customer),
                                      job_type="scoring", metadata={})
            repo.finish_job_run(session, run.id, status=JobRunStatus.COMPLETED, metrics={"answers": 6})
            for j, name in enumerate(["Acme", *COMPETITORS]):
                session.add(BrandScoreAggregate(
                    job_run_id=run.id, brand_id=uuid.UUID(brand), brand_name=name, is_own_brand=j == 0, answers=6,
                    mentioned_answers=4 - j, mentions=5 - j, visibility=(4 - j + k) / 8, share_of_voice=(3 - j) / 6,
                    first_mention_rate=0.3, average_position=1.0 + j, average_sentiment=0.4 - 0.3 * j + 0.1 * k,
                    computed_at=now - timedelta(hours=3 - k)))
        for rank, (cg, symbol, price) in enumerate([("bitcoin", "btc", 90_000.0), ("ethereum", "eth", 3_100.0),
                                                    ("ripple", "xrp", FLAT_PRICE), ("solana", "sol", SINGLE_PRICE)]):
            asset = Asset(coingecko_id=cg, symbol=symbol, name=cg.title(), market_cap_rank=rank + 1, is_tracked=True)
            session.add(asset)
            session.flush()
            for m in range(1 if symbol == "sol" else 8):
                moves = symbol in ("btc", "eth")
                session.add(AssetPrice(asset_id=asset.id, timestamp=now - timedelta(minutes=15 * (8 - m)),
                                       source="coingecko",
                                       price_usd=price * (1 + 0.01 * ((m * 7) % 5 - 2)) if moves else price))
    return brand, customer


def seed_history(url: str, brand: str, customer: str, runs: int) -> None:
    """``runs`` finished job runs of the brand, with the nested metrics real runs write."""
    with session_scope(url) as session:
        for i in range(runs):
            run = repo.create_job_run(session, brand_id=uuid.UUID(brand), customer_id=uuid.UUID(customer),
                                      job_type="data_collection_and_scoring", metadata={})
            repo.finish_job_run(session, run.id, status=JobRunStatus.COMPLETED, metrics={
                "data_collection": {"successful_executions": 6 + i, "failed_executions": 0,
                                    "collectors": {"chatgpt": 2, "google_aio": 2, "perplexity": 2},
                                    "queries": ["best CRM for a small business", "which CRM has the best support",
                                                "cheapest CRM with email automation"] * 3},
                "scoring": {"answers_position_scored": 6, "answers_sentiment_scored": 6, "brands": 3}})


async def _prefect_schedule(slug: str) -> object | None:
    async with get_client() as client:
        dep = await client.read_deployment_by_name(BRAND_JOB_DEPLOYMENT)
        return next((s for s in await client.read_deployment_schedules(dep.id) if s.slug == slug), None)


def _rows(url: str) -> list[ScheduledJob]:
    with session_scope(url) as session:
        rows = list(session.execute(select(ScheduledJob).where(ScheduledJob.brand_id.is_not(None))).scalars())
        session.expunge_all()
        return rows




def _run(url: str, run_id: str) -> JobRun:
    with session_scope(url) as session:
        run = session.get(JobRun, uuid.UUID(run_id))
        assert run is not None
        session.expunge(run)
        return run


@asynccontextmanager
async def _browser(chromium: Path, server: str) -> AsyncIterator[tuple[Any, list[str]]]:
    """A 1400 px wide page on ``server``, signed in with the token; page errors and requests
    to anywhere but the server (the page works offline) end up in the list, which must stay empty."""
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
        page = await browser.new_page(viewport={"width": WIDTH, "height": 1000})
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        page.on("request", lambda request: None if request.url.startswith(server)
                else problems.append(f"outside request: {request.url}"))
        page.set_default_timeout(15_000)
        await page.goto(f"{server}/admin/scheduled-jobs")
        await page.fill("#token", TOKEN)
        await page.click("#token-use")
        await expect(page.locator("#message")).to_have_text("loaded")
        yield page, problems
        await browser.close()


async def _no_horizontal_overflow(page: Any, view: str) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{view}: the page is {width} px wide"


async def _chart(page: Any, selector: str) -> dict[str, Any]:
    """What the Chart.js instance in ``selector`` shows: its datasets, axis ranges, tick labels."""
    return await page.evaluate("""(selector) => {
        const chart = Chart.getChart(document.querySelector(`${selector} canvas`));
        if (!chart) return null;
        const scale = (s) => ({min: s.min, max: s.max, left: s.left, width: s.width,
                               ticks: s.ticks.map((t, i) => s.getLabelForValue ? String(s.getLabelForValue(t.value)) : '')});
        const y = chart.scales.y;
        chart.ctx.save();
        chart.ctx.font = Chart.helpers.toFont(y.options.ticks.font).string;
        const widest = Math.max(...y.ticks.map((t) => chart.ctx.measureText(String(t.label)).width));
        chart.ctx.restore();
        return {type: chart.config.type, labels: chart.data.labels || [],
                datasets: chart.data.datasets.map((d) => ({label: d.label, n: d.data.length})),
                x: scale(chart.scales.x), y: scale(y), y_label_width: widest, chart_right: chart.chartArea.right,
                canvas_width: chart.width};
    }""", selector)


async def test_brand_scheduled_jobs_page(chromium, server, brand_env):
    from playwright.async_api import expect

    url = brand_env["DATABASE_URL"]
    brand, customer = seed_trends(url)
    seed_history(url, brand, customer, 22)  # with the 3 scored runs: 25 runs, two pages of 20
    async with _browser(chromium, server) as (page, problems):
        # the customer picker: the id's start and the customer's brands
        await expect(page.locator(f"#filter-customer option[value='{customer}']")).to_have_text(
            f"{customer[:8]}… (Acme CRM)")

        # bad input: the API's message names the field, nothing is created
        await page.fill("#create-cron", "61 * * * *")
        await page.click("#create-submit")
        await expect(page.locator("#message")).to_contain_text("cron_expression")
        assert _rows(url) == []

        # create
        await page.fill("#create-cron", "15 8 * * 1-5")
        await page.fill("#create-timezone", "Europe/Paris")
        await page.click("#create-submit")
        row = page.locator("#scheduled-table tbody tr[data-scheduled-id]")
        await expect(row).to_have_count(1)
        await expect(row.locator(".active-cell")).to_have_text("active")
        [job] = _rows(url)
        assert (job.cron_expression, job.timezone, job.is_enabled) == ("15 8 * * 1-5", "Europe/Paris", True)
        schedule = await _prefect_schedule(f"brand-job-{job.id}")
        assert schedule is not None and schedule.active

        # edit the cron: a bad one is refused inline naming the field, a good one is stored and applied
        await row.locator("[data-testid=edit]").click()
        form = page.locator(f"form[data-schedule-for='{job.id}']")
        await _no_horizontal_overflow(page, "brand scheduled jobs with an edit form open")
        await form.locator("[name=cron]").fill("61 * * * *")
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".field-error")).to_contain_text("cron_expression: ")
        assert _rows(url)[0].cron_expression == "15 8 * * 1-5"
        await form.locator("[name=cron]").fill("45 6 * * 1-5")
        await form.locator("[name=timezone]").fill("America/New_York")
        await form.locator("button[type=submit]").click()
        await expect(row.locator(".cron-cell")).to_have_text("45 6 * * 1-5")
        await expect(row.locator(".timezone-cell")).to_have_text("America/New_York")
        await expect(page.locator(".edit-row")).to_have_count(0)
        assert (_rows(url)[0].cron_expression, _rows(url)[0].timezone) == ("45 6 * * 1-5", "America/New_York")
        schedule = await _prefect_schedule(f"brand-job-{job.id}")
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("45 6 * * 1-5", "America/New_York")

        # toggle
        await row.locator("[data-testid=toggle]").click()
        await expect(row.locator(".active-cell")).to_have_text("inactive")
        assert _rows(url)[0].is_enabled is False
        assert (await _prefect_schedule(f"brand-job-{job.id}")).active is False

        # paging of the run history: 20 a page, newest first
        pager, runs = page.locator("#runs-pager"), page.locator("#runs-table tbody tr")
        await expect(pager.locator(".range")).to_have_text("1–20 of 25")
        await expect(runs).to_have_count(20)
        first_page = await runs.evaluate_all("rows => rows.map(r => r.dataset.runId)")
        await pager.locator("[data-testid=older]").click()
        await expect(pager.locator(".range")).to_have_text("21–25 of 25")
        await expect(runs).to_have_count(5)
        assert not set(first_page) & set(await runs.evaluate_all("rows => rows.map(r => r.dataset.runId)"))
        await expect(pager.locator("[data-testid=older]")).to_be_disabled()
        await pager.locator("[data-testid=newer]").click()
        await expect(pager.locator(".range")).to_have_text("1–20 of 25")

        # trigger: a pending run, the flow run linked; it refreshes by itself until it ends
        await row.locator("[data-testid=trigger]").click()
        pending = runs.filter(has_text="pending")
        await expect(pending).to_have_count(1)
        run_id = await pending.get_attribute("data-run-id")
        flow_run_id = _run(url, run_id).flow_run_id
        assert flow_run_id
        await expect(page.locator("#message a")).to_have_attribute("href", flow_run_url(flow_run_id))
        await expect(pending.locator("a")).to_have_attribute("href", flow_run_url(flow_run_id))
        await expect(page.locator("#runs-live")).to_be_visible()
        await expect(pager.locator(".range")).to_have_text("1–20 of 26")
        async with get_client() as client:
            flow_run = await client.read_flow_run(uuid.UUID(flow_run_id))
        await brand_job(**flow_run.parameters)  # what a worker does with the flow run
        assert _run(url, run_id).status == JobRunStatus.COMPLETED
        done = page.locator(f"#runs-table tbody tr[data-run-id='{run_id}']")
        await expect(done.locator(".status-cell")).to_have_text("completed", timeout=10_000)  # no click
        await expect(page.locator("#runs-live")).to_be_hidden()

        # metrics wrap inside their column, folded or unfolded
        await _no_horizontal_overflow(page, "brand scheduled jobs")
        await done.locator("details.metrics summary").click()
        await expect(done.locator("details.metrics pre")).to_contain_text('"successful_executions"')
        await page.locator("#runs-table tbody tr details.metrics summary").nth(3).click()
        await _no_horizontal_overflow(page, "brand scheduled jobs, metrics unfolded")
        await page.screenshot(path=str(SHOTS / "ops-scheduled-jobs.png"), full_page=True)

        # a new brand for the same customer; a name it uses already is refused inline
        await page.select_option("#brand-customer", customer)
        await page.fill("#brand-name", "Globex Mail")
        await page.fill("#brand-competitors", "Acme CRM, Initech")
        await page.fill("#brand-topics", "email: best email tool | cheapest email tool\nsupport: who answers fastest")
        await page.click("#brand-submit")
        await expect(page.locator("#message")).to_have_text("brand Globex Mail created: 2 topic(s), 3 queries")
        await expect(page.locator(f"#filter-customer option[value='{customer}']")).to_have_text(
            f"{customer[:8]}… (Acme CRM, Globex Mail)")
        await expect(page.locator("#create-brand option", has_text="Globex Mail")).to_have_count(1)
        made = [b for b in await brand_list(customer) if b["name"] == "Globex Mail"]
        assert [(b["topics_count"], b["queries_count"], b["competitors"]) for b in made] == [
            (2, 3, ["Acme CRM", "Initech"])]
        await page.select_option("#brand-customer", customer)
        await page.fill("#brand-name", "Globex Mail")
        await page.click("#brand-submit")
        await expect(page.locator("#brand-error")).to_contain_text("name: customer")
        await page.select_option("#brand-customer", "new")
        assert re.fullmatch(r"[0-9a-f-]{36}", await page.input_value("#brand-customer-new"))

        # delete
        await row.locator("[data-testid=delete]").click()
        await expect(page.locator("#scheduled-table tbody tr")).to_have_count(0)
        assert _rows(url) == [] and await _prefect_schedule(f"brand-job-{job.id}") is None

        # forget the token: gone from storage, the field and the page
        await page.click("#forget-token")
        assert await page.evaluate("sessionStorage.getItem('jobpipes-token')") is None
        assert await page.input_value("#token") == ""
        await expect(page.locator("#runs-table tbody tr")).to_have_count(0)
        await expect(page.locator("#message")).to_contain_text("Token forgotten")
        await page.reload()
        await expect(page.locator("#message")).to_contain_text("Enter the bearer token")
        await expect(page.locator("#runs-table tbody tr")).to_have_count(0)
    assert problems == []


async def brand_list(customer: str) -> list[dict[str, Any]]:
    from deployments.control import brands

    return await brands.list_brands(customer)


async def test_jobs_and_trends_page(chromium, server, brand_env):
    from playwright.async_api import expect

    url = brand_env["DATABASE_URL"]
    brand, customer = seed_trends(url)
    unscored, _ = make_brand(url, topics={"t": ["q"]})
    scheduled = await brand_admin.create_scheduled_job(brand_id=brand, customer_id=customer,
                                                       job_type="data_collection_and_scoring",
                                                       cron_expression="0 9 * * *")
    async with _browser(chromium, server) as (page, problems):
        await page.goto(f"{server}/admin")
        await expect(page.locator("#message")).to_have_text("loaded")
        await expect(page.locator("#jobs-table tbody tr[data-job-id=match-fetcher] .badge")).to_have_text("SUCCESS")
        # a brand job goes by its brand and job type
        await expect(page.locator(f"#jobs-table tbody tr[data-job-id='brand-job-{scheduled['id']}'] .job-title")
                     ).to_have_text("Acme CRM · data_collection_and_scoring")

        # the charts (Chart.js); the Prefect test server is shared by the session: crashed runs of
        # earlier tests may add jobs
        runs = await _chart(page, "#chart-runs")
        assert {"price-collection", "match-fetcher", "profile-fetcher"} <= set(runs["labels"])
        assert runs["y_label_width"] <= runs["y"]["width"], "job names clipped"
        assert runs["chart_right"] < runs["canvas_width"] - 20, "no room left for the totals"
        assert runs["x"]["min"] == 0
        durations = await _chart(page, "#chart-durations")
        assert {"price-collection", "match-fetcher", "profile-fetcher"} <= {d["label"] for d in durations["datasets"]}
        assert durations["y"]["min"] == 0
        quota = await _chart(page, "#chart-quota")
        assert [d["label"] for d in quota["datasets"]] == ["calls used", "projection", "limit 500"]
        assert quota["y"]["min"] == 0 and quota["y"]["max"] >= 500
        await expect(page.locator("#quota-note")).to_contain_text("runs out on")
        await expect(page.locator("#chart-prices .chart canvas")).to_have_count(4)
        for symbol in ("BTC", "ETH"):
            prices = await _chart(page, f"#chart-prices [data-symbol={symbol}]")
            assert prices["datasets"] == [{"label": symbol, "n": 8}]
        flat = await _chart(page, "#chart-prices [data-symbol=XRP]")  # flat: a small band around its value
        assert 0 <= flat["y"]["min"] < FLAT_PRICE < flat["y"]["max"], flat["y"]
        assert flat["y"]["max"] - flat["y"]["min"] <= 0.2 * FLAT_PRICE, flat["y"]
        assert all(not label.startswith("-") for label in flat["y"]["ticks"]), flat["y"]["ticks"]
        single = await _chart(page, "#chart-prices [data-symbol=SOL]")  # one point: inside both ranges
        assert single["datasets"] == [{"label": "SOL", "n": 1}]
        assert 0 <= single["y"]["min"] < SINGLE_PRICE < single["y"]["max"], single["y"]
        assert single["x"]["max"] - single["x"]["min"] >= 30 * 60e3, single["x"]
        for chart in ("#chart-visibility", "#chart-sov", "#chart-sentiment"):
            scores = await _chart(page, chart)
            assert len(scores["datasets"]) == 1 + len(COMPETITORS), chart
        # a tooltip on hover
        sol = page.locator("#chart-prices [data-symbol=SOL] canvas")
        await sol.scroll_into_view_if_needed()
        box = await sol.bounding_box()
        point = await page.evaluate("""() => { const c = Chart.getChart(document.querySelector(
            '#chart-prices [data-symbol=SOL] canvas')); const p = c.getDatasetMeta(0).data[0]; return {x: p.x, y: p.y}; }""")
        await page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
        assert await page.evaluate("""() => Chart.getChart(document.querySelector(
            '#chart-prices [data-symbol=SOL] canvas')).tooltip.getActiveElements().length""") == 1
        await _no_horizontal_overflow(page, "jobs and trends")
        await page.screenshot(path=str(SHOTS / "ops-jobs-and-trends.png"), full_page=True)

        # empty states: a brand without scored runs
        await page.select_option("#score-brand", unscored)
        for chart in ("#chart-visibility", "#chart-sov", "#chart-sentiment"):
            await expect(page.locator(f"{chart} .empty")).to_contain_text("no data yet")
            await expect(page.locator(f"{chart} canvas")).to_have_count(0)

        # a fixed job's configuration: a bad knob refused inline naming it, a good one stored and applied
        price = page.locator("#jobs-table tbody tr[data-job-id=price-collection]")
        await price.locator("[data-testid=config-price-collection]").click()
        form = page.locator("form[data-config-for=price-collection]")
        await expect(form.locator("[data-knob=limit]")).to_be_visible()
        await _no_horizontal_overflow(page, "jobs with a configuration form open")
        await form.locator("[data-knob=limit]").fill("0")
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".field-error")).to_contain_text("config.limit: ")
        await form.locator("[name=schedule]").fill("61 * * * *")
        await form.locator("[data-knob=limit]").fill("25")
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".field-error")).to_contain_text("schedule: ")
        await form.locator("[name=schedule]").fill("*/20 * * * *")
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#message")).to_contain_text("price-collection: configuration saved")
        await expect(price).to_contain_text("*/20 * * * *")
        stored = await sync.job_config(get_job("price-collection"))
        assert (stored["schedule"], stored["config"]) == ("*/20 * * * *", {"limit": 25})

        await page.locator("[data-testid=trigger-smurf-analyzer]").click()
        await expect(page.locator("#message")).to_contain_text("flow run")
        await expect(page.locator("#message a")).to_have_attribute("href", re.compile(r"/runs/flow-run/"))
        await expect(page.locator("#message .run-state")).to_contain_text("waiting for it to finish")
        triggered = (await page.locator("#message a").get_attribute("href")).rsplit("/", 1)[1]
        smurf_job = get_job("smurf-analyzer")
        with session_scope(url) as session:  # what the flow run writes when a worker has run it
            at = utcnow()
            session.add(JobExecutionHistory(job_name=smurf_job.history_name, job_type=smurf_job.key, status="SUCCESS",
                                            started_at=at, finished_at=at, duration_ms=900, flow_run_id=triggered,
                                            metrics={}, total_processed=3))
        await expect(page.locator("#message .run-state")).to_have_text(" — finished: SUCCESS")  # no click
        # registered in Prefect by the trigger, with the schedule of its row: no drift left (the
        # triggered run is Prefect's next run; the test server runs no scheduler)
        smurf = page.locator("#jobs-table tbody tr[data-job-id=smurf-analyzer]")
        await expect(smurf.locator(".drift")).to_have_count(0)
        await expect(smurf.locator(".alarm-text")).to_have_count(0)
        await expect(smurf).not_to_have_class("alarm")
        await expect(smurf.locator(".badge")).to_have_text("SUCCESS")
        await page.locator("[data-testid=runs-profile-fetcher]").click()
        await expect(page.locator("#executions tbody tr")).to_have_count(6)
        await expect(page.locator("#executions-pager .range")).to_have_text("1–6 of 6")
        await _no_horizontal_overflow(page, "jobs with a job's runs")
        await page.screenshot(path=str(SHOTS / "ops-jobs-runs.png"), full_page=True)

        await page.goto(f"{server}/docs")  # the API docs, from the vendored Swagger UI
        await expect(page.get_by_text("/api/v1/jobs/status/overview").first).to_be_visible()
    await brand_admin.delete_scheduled_job(scheduled["id"])
    assert problems == []
