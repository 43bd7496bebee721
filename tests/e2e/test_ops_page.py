"""The operator page in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium)
against the app served by uvicorn, with PostgreSQL and the Prefect test server behind it.

Create, toggle, trigger and delete a brand schedule through the page (seed 003), then the
jobs overview and the trends charts with data. Screenshots go to .data/screenshots/.
Without Chromium the test is skipped, except under CI=true where it fails.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from prefect.client.orchestration import get_client
from sqlalchemy import select

from core.brands import repo
from core.brands.models import BrandScoreAggregate, JobRunStatus
from core.crypto.models import Asset, AssetPrice
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.profiles.models import ApiQuota
from core.profiles.quota import current_period
from core.runs.models import JobExecutionHistory
from core.settings import get_settings
from deployments.api.app import create_app
from flows.brands import BRAND_JOB_DEPLOYMENT
from tests.conftest import free_port
from tests.integration.test_brand_admin_api import TOKEN
from tests.integration.test_brand_jobs import COMPETITORS, make_brand

pytestmark = pytest.mark.asyncio(loop_scope="session")
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it when it can)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return CHROMIUM


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


def seed_trends(url: str) -> str:
    """Runs of a few jobs, this month's quota, two scored brand runs, coin prices; the brand id."""
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
        for rank, (cg, symbol, price) in enumerate([("bitcoin", "btc", 90_000.0), ("ethereum", "eth", 3_100.0)]):
            asset = Asset(coingecko_id=cg, symbol=symbol, name=cg.title(), market_cap_rank=rank + 1, is_tracked=True)
            session.add(asset)
            session.flush()
            for m in range(8):
                session.add(AssetPrice(asset_id=asset.id, timestamp=now - timedelta(minutes=15 * (8 - m)),
                                       source="coingecko", price_usd=price * (1 + 0.01 * ((m * 7) % 5 - 2))))
    return brand


async def _prefect_schedule(slug: str) -> object | None:
    async with get_client() as client:
        dep = await client.read_deployment_by_name(BRAND_JOB_DEPLOYMENT)
        return next((s for s in await client.read_deployment_schedules(dep.id) if s.slug == slug), None)


def _rows(url: str) -> list[ScheduledJob]:
    with session_scope(url) as session:
        rows = list(session.execute(select(ScheduledJob).where(ScheduledJob.brand_id.is_not(None))).scalars())
        session.expunge_all()
        return rows


async def test_operator_page_in_chromium(chromium, server, brand_env):
    from playwright.async_api import async_playwright, expect

    url = brand_env["DATABASE_URL"]
    seed_trends(url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        outside: list[str] = []  # offline: nothing but this server is asked for anything
        page.on("request", lambda request: None if request.url.startswith(server) else outside.append(request.url))
        await page.goto(f"{server}/admin/scheduled-jobs")
        await page.fill("#token", TOKEN)
        await page.click("#token-form button")
        await expect(page.locator("#message")).to_have_text("loaded")

        # bad input: the API's message names the field, nothing is created
        await page.fill("#create-cron", "61 * * * *")
        await page.click("#create-submit")
        await expect(page.locator("#message")).to_contain_text("cron_expression")
        assert _rows(url) == []

        # create
        await page.fill("#create-cron", "15 8 * * 1-5")
        await page.fill("#create-timezone", "Europe/Paris")
        await page.click("#create-submit")
        row = page.locator("#scheduled-table tbody tr")
        await expect(row).to_have_count(1)
        await expect(row.locator(".active-cell")).to_have_text("active")
        [job] = _rows(url)
        assert (job.cron_expression, job.timezone, job.is_enabled) == ("15 8 * * 1-5", "Europe/Paris", True)
        schedule = await _prefect_schedule(f"brand-job-{job.id}")
        assert schedule is not None and schedule.active

        # toggle
        await row.locator("[data-testid=toggle]").click()
        await expect(row.locator(".active-cell")).to_have_text("inactive")
        assert _rows(url)[0].is_enabled is False
        assert (await _prefect_schedule(f"brand-job-{job.id}")).active is False

        # trigger: a pending run in the history, with its flow run
        await row.locator("[data-testid=trigger]").click()
        runs = page.locator("#runs-table tbody tr")
        await expect(runs.filter(has_text="pending")).to_have_count(1)
        await expect(runs.filter(has_text="pending").locator("a")).to_have_attribute("href", __import__("re").compile(
            r"/runs/flow-run/"))
        await expect(runs.filter(has_text="completed")).to_have_count(3)
        await page.screenshot(path=str(SHOTS / "scheduled-jobs.png"), full_page=True)

        # delete
        await row.locator("[data-testid=delete]").click()
        await expect(page.locator("#scheduled-table tbody tr")).to_have_count(0)
        assert _rows(url) == [] and await _prefect_schedule(f"brand-job-{job.id}") is None

        # the jobs overview and the trends
        await page.goto(f"{server}/admin")
        await expect(page.locator("#message")).to_have_text("loaded")
        await expect(page.locator("#jobs-table tbody tr[data-job-id=match-fetcher] .badge")).to_have_text("SUCCESS")
        # (the Prefect test server is shared by the session: crashed runs of earlier tests may add jobs)
        for job in ("price-collection", "match-fetcher", "profile-fetcher"):
            assert await page.locator(f"#chart-runs svg rect[data-bar={job}]").count() == 1, job
            assert await page.locator(f"#chart-durations svg polyline[data-series={job}]").count() == 1, job
        assert await page.locator("#chart-quota svg polyline").count() == 2  # used + projection
        await expect(page.locator("#quota-note")).to_contain_text("runs out on")
        assert await page.locator("#chart-prices svg polyline").count() == 2
        for chart in ("#chart-visibility", "#chart-sov", "#chart-sentiment"):
            assert await page.locator(f"{chart} svg polyline").count() == 1 + len(COMPETITORS), chart
        await page.locator("[data-testid=trigger-smurf-analyzer]").click()
        await expect(page.locator("#message")).to_contain_text("flow run")
        await expect(page.locator("#message a")).to_have_attribute("href", __import__("re").compile(r"/runs/flow-run/"))
        # registered in Prefect by the trigger, with the schedule of its row: no drift left (the
        # triggered run is Prefect's next run; the test server runs no scheduler)
        smurf = page.locator("#jobs-table tbody tr[data-job-id=smurf-analyzer]")
        await expect(smurf.locator(".drift")).to_have_count(0)
        await expect(smurf.locator(".alarm-text")).to_have_count(0)
        await expect(smurf).not_to_have_class("alarm")
        await page.locator("[data-testid=runs-profile-fetcher]").click()
        await expect(page.locator("#executions tbody tr")).to_have_count(6)
        await page.screenshot(path=str(SHOTS / "jobs-and-trends.png"), full_page=True)

        await page.goto(f"{server}/docs")  # the API docs, from the vendored Swagger UI
        await expect(page.get_by_text("/api/v1/jobs/status/overview").first).to_be_visible()
        await browser.close()
    assert errors == [] and outside == []
