"""``jobpipes profiles|quota|riot|brands`` as a user types them (the console script in a
subprocess) against PostgreSQL, the Prefect test API and the Riot sandbox: each verb's
rows in the database, its ``--json``, and bad input as one line naming the field, exit 2.

Each invocation costs an interpreter start and ``import prefect``: independent ones run
side by side (``_jobpipes_all``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings
from sqlalchemy import select

from core.brands.models import Brand, BrandTopic, GeneratedQuery
from core.config import PROJECT_ROOT
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.profiles.models import ApiQuota, EntryStatus, ProfileEntry
from core.riot.models import RiotPlayer, SmurfAnalysis
from deployments.control import brand_admin
from flows.brands import BRAND_JOB_DEPLOYMENT
from tests.integration.test_ops_api import riot_env  # noqa: F401  (fixture)

Run = tuple[str, ...] | tuple[tuple[str, ...], str]  # the arguments, or (the arguments, stdin)


@pytest.fixture
def cli_env(riot_env: dict[str, str]) -> dict[str, str]:  # noqa: F811  (the imported fixture)
    """The subprocess environment: the test database, sandboxes and Prefect API of this session."""
    env = {**os.environ, **riot_env, "PREFECT_API_URL": str(get_current_settings().api.url), "COLUMNS": "200"}
    assert env["PREFECT_API_URL"].startswith("http"), env["PREFECT_API_URL"]
    return env


def _jobpipes_all(env: dict[str, str], *runs: Run) -> list[subprocess.CompletedProcess[str]]:
    """Run every ``jobpipes`` command line at once; their results in order."""
    command = str(Path(sys.executable).parent / "jobpipes")  # the console script of [project.scripts]
    started = []
    for run in runs:
        args, stdin = (run[0], run[1]) if isinstance(run[0], tuple) else (run, None)
        process = subprocess.Popen([command, *args], cwd=PROJECT_ROOT, env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin is not None else None)
        started.append((process, args, stdin))
    done = []
    for process, args, stdin in started:
        stdout, stderr = process.communicate(stdin, timeout=180)
        done.append(subprocess.CompletedProcess([command, *args], process.returncode, stdout, stderr))
    return done


def _bad_input(result: subprocess.CompletedProcess[str], field: str) -> None:
    """Exit 2 and one line on stderr that starts with the field's name."""
    assert result.returncode == 2, (result.args, result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith(f"{field}:") and result.stderr.count("\n") == 1, result.stderr


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr[-3000:])
    return result.stdout


def test_profile_queue_and_quota_ledger(cli_env):
    url = cli_env["DATABASE_URL"]
    with session_scope(url) as session:
        session.add(ProfileEntry(urn="ACoAAFailedOne", status=EntryStatus.FAILED.value, error_message="HTTP 404"))
        session.add(ApiQuota(provider="rapidapi", period="2025-01-01T00:00Z", monthly_limit=100, calls_used=10,
                             reserved=2))

    added, bad_urn, failed, bad_status, reset = _jobpipes_all(
        cli_env,
        (("profiles", "add", "ACoAAAEkwwAB9KEc", "--file", "-"), "ACoAABxyz\n# a comment\n\nACoAAFailedOne\n"),
        ("profiles", "add", "ACoAAGood", "bad/urn"),
        ("profiles", "list", "--status", "failed", "--json"),
        ("profiles", "list", "--status", "DONE"),
        ("quota", "reset", "--monthly-limit", "500", "--json"))
    assert _ok(added).strip() == "added 2 new PENDING entries (1 already known)"
    _bad_input(bad_urn, "urns")
    assert "'bad/urn'" in bad_urn.stderr
    page = json.loads(_ok(failed))
    assert [(e["urn"], e["status"], e["error"]) for e in page["items"]] == [("ACoAAFailedOne", "FAILED", "HTTP 404")]
    assert page["total"] == 1 and page["counts"]["FAILED"] == 1  # (the add runs alongside)
    _bad_input(bad_status, "status")
    opened = json.loads(_ok(reset))
    assert opened["status"] == "SUCCESS" and opened["flow_run_id"]
    assert (opened["provider"], opened["limit"], opened["used"], opened["remaining"]) == ("rapidapi", 500, 0, 500)

    requeued, ledger = _jobpipes_all(cli_env, ("profiles", "requeue-failed", "--json"), ("quota", "show", "--json"))
    assert json.loads(_ok(requeued)) == {"requeued": 1}
    shown = json.loads(_ok(ledger))
    assert shown["current_period"] == opened["period"]
    assert [(r["period"], r["limit"], r["used"], r["reserved"], r["remaining"]) for r in shown["items"]] == [
        (opened["period"], 500, 0, 0, 500), ("2025-01-01T00:00Z", 100, 10, 2, 88)]
    with session_scope(url) as session:
        rows = {e.urn: (e.status, e.error_message) for e in session.execute(select(ProfileEntry)).scalars()}
    assert rows == {"ACoAAAEkwwAB9KEc": ("PENDING", None), "ACoAABxyz": ("PENDING", None),
                    "ACoAAFailedOne": ("PENDING", None)}  # the bad URN's batch added nothing


def test_riot_players_are_tracked_by_riot_id_and_listed_with_their_verdicts(cli_env, riot_api_sandbox):
    from sandbox.riot import puuid_of

    url = cli_env["DATABASE_URL"]
    with session_scope(url) as session:
        session.add_all([RiotPlayer(puuid="p-smurf", platform="na1", game_name="Quick Climb", tag_line="NA1",
                                    is_tracked=True, matches_fetched=20),
                         RiotPlayer(puuid="p-found", platform="na1", is_tracked=False)])
        session.add(SmurfAnalysis(puuid="p-smurf", games=20, score=0.8, is_flagged=True, thresholds={}, signals={
            "win_rate": {"fired": True}, "kda": {"fired": False}, "low_level": {"fired": True}}))
    riot_api_sandbox.update_knobs(banned_puuids=[puuid_of("Ghost#NA1")])
    try:
        tracked, bad_platform, unknown, players = _jobpipes_all(
            cli_env, ("riot", "track", "Zed Main#EUW", "euw1", "--json"), ("riot", "track", "Some One#NA1", "moon"),
            ("riot", "track", "Ghost#NA1", "na1"), ("riot", "players", "--tracked", "--json"))
    finally:
        riot_api_sandbox.reset()
    assert json.loads(_ok(tracked)) == {"puuid": puuid_of("Zed Main#EUW"), "game_name": "Zed Main",
                                        "tag_line": "EUW", "platform": "euw1", "is_tracked": True, "created": True}
    _bad_input(bad_platform, "platform")
    assert unknown.returncode == 1 and unknown.stderr.startswith("riot_id: no Riot account Ghost#NA1"), unknown.stderr
    assert unknown.stderr.count("\n") == 1, unknown.stderr  # no Prefect traceback on the console
    listed = json.loads(_ok(players))
    smurf = [p for p in listed["items"] if p["puuid"] == "p-smurf"]
    assert [(p["riot_id"], p["smurf"]["flagged"], p["smurf"]["signals"]) for p in smurf] == [
        ("Quick Climb#NA1", True, ["low_level", "win_rate"])]
    assert "p-found" not in {p["puuid"] for p in listed["items"]}
    with session_scope(url) as session:
        assert {p.puuid: p.is_tracked for p in session.execute(select(RiotPlayer)).scalars()} == {
            "p-smurf": True, "p-found": False, puuid_of("Zed Main#EUW"): True}


async def _brand_job_schedules() -> dict[str, object]:
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(BRAND_JOB_DEPLOYMENT)
        return {s.slug: s for s in await client.read_deployment_schedules(deployment.id)}


async def test_a_brand_is_created_scheduled_listed_and_shown(cli_env):
    url, customer = cli_env["DATABASE_URL"], str(uuid.uuid4())
    added, bad_customer, unknown = _jobpipes_all(
        cli_env,
        ("brands", "add", "Acme CRM", "--customer", customer, "--topic", "pricing", "--topic", "support",
         "--query", "crm software:best CRM for a small business", "--query", "pricing:cheapest CRM: which one?",
         "--competitor", "Globex", "--competitor", "Initech", "--json"),
        ("brands", "add", "Acme CRM", "--customer", "x"),
        ("brands", "show", str(uuid.uuid4())))
    brand = json.loads(_ok(added))
    _bad_input(bad_customer, "customer_id")
    _bad_input(unknown, "brand_id")
    assert (brand["name"], brand["customer_id"], brand["competitors"]) == ("Acme CRM", customer, ["Globex", "Initech"])
    assert {t["name"]: [q["query_text"] for q in t["queries"]] for t in brand["topics"]} == {
        "crm software": ["best CRM for a small business"], "pricing": ["cheapest CRM: which one?"], "support": []}
    with session_scope(url) as session:
        assert session.execute(select(Brand.name)).scalars().all() == ["Acme CRM"]  # "x" created nothing
        assert len(session.execute(select(BrandTopic)).all()) == 3
        assert len(session.execute(select(GeneratedQuery)).all()) == 2

    try:
        created, bad_cron = _jobpipes_all(
            cli_env, ("brands", "schedule", brand["id"], "--cron", "0 6 * * *", "--timezone", "Europe/Paris", "--json"),
            ("brands", "schedule", brand["id"], "--cron", "61 * * * *"))
        job = json.loads(_ok(created))
        _bad_input(bad_cron, "cron_expression")
        assert job["created"] is True and (job["brand_id"], job["customer_id"]) == (brand["id"], customer)
        assert (job["cron_expression"], job["timezone"], job["job_type"]) == (
            "0 6 * * *", "Europe/Paris", "data_collection_and_scoring")

        updated, listed, shown = _jobpipes_all(
            cli_env, ("brands", "schedule", brand["id"], "--cron", "30 7 * * 1-5", "--inactive", "--json"),
            ("brands", "list", "--customer", customer), ("brands", "show", brand["id"], "--json"))
        again = json.loads(_ok(updated))
        assert (again["id"], again["created"], again["cron_expression"], again["timezone"], again["is_active"]) == (
            job["id"], False, "30 7 * * 1-5", "Europe/Paris", False)  # the same job; its timezone kept
        [line] = [line for line in _ok(listed).splitlines() if brand["id"] in line]
        assert line.split()[:2] == ["Acme", "CRM"] and customer in line and "Globex, Initech" in line
        assert " 3 " in line and " 2 " in line and "(Europe/Paris) data_collection_and_scoring" in line
        assert json.loads(_ok(shown))["queries_count"] == 2
        with session_scope(url) as session:
            rows = session.execute(select(ScheduledJob).where(ScheduledJob.brand_id == uuid.UUID(brand["id"]))).scalars()
            assert [(r.cron_expression, r.is_enabled) for r in rows] == [("30 7 * * 1-5", False)]
        schedule = (await _brand_job_schedules())[f"brand-job-{job['id']}"]
        assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
            "30 7 * * 1-5", "Europe/Paris", False)
        assert schedule.parameters["brand_id"] == brand["id"]
    finally:
        for row in await brand_admin.list_scheduled_jobs(brand_id=brand["id"]):
            await brand_admin.delete_scheduled_job(row["id"])
