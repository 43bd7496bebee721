"""Faults that hit the database or kill the process: every entry ends recoverable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import text, update

from core.config import PROJECT_ROOT
from core.db import session_scope
from core.db.engine import get_engine
from core.db.types import utcnow
from core.profiles.models import ProfileEntry
from flows.profiles import profile_fetcher
from tests.factories import entry_rows, history_rows, profile_rows, seed_entries, urns


async def test_a_row_the_database_refuses_fails_only_its_entry(app_env):
    url = app_env["DATABASE_URL"]
    names = urns(12)
    seed_entries(url, names)
    engine = get_engine(url)
    with engine.begin() as conn:  # a real database error for some rows, not a mock
        conn.execute(text("ALTER TABLE profiles ADD CONSTRAINT no_jane CHECK (first_name <> 'Jane')"))
    try:
        await profile_fetcher(batch_size=12)
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE profiles DROP CONSTRAINT no_jane"))

    rows, profiles = entry_rows(url), profile_rows(url)
    failed = {u for u, r in rows.items() if r.status == "FAILED"}
    assert failed and len(failed) < len(names)  # the generated names include some Janes
    assert all("database error" in rows[u].error_message and "no_jane" in rows[u].error_message
               for u in failed)
    assert set(profiles) == set(names) - failed
    root = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    stored = {p.name.split("-")[0] for p in root.rglob("*.json")}
    assert stored == set(profiles)  # objects of refused rows were removed again
    assert history_rows(url)[0].status == "PARTIAL"


async def test_a_killed_run_leaves_entries_that_the_next_run_recovers(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    names = urns(6)
    seed_entries(url, names)
    rapidapi_sandbox.update_knobs(latency_ms=30_000)  # the victim hangs mid-fetch
    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    victim = subprocess.Popen(
        [sys.executable, "-c", "import asyncio; from flows.profiles import profile_fetcher;"
                               " asyncio.run(profile_fetcher(batch_size=6))"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while {r.status for r in entry_rows(url).values()} != {"FETCHING"}:
            assert victim.poll() is None and time.monotonic() < deadline, "victim never claimed"
            time.sleep(0.2)
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    assert {r.status for r in entry_rows(url).values()} == {"FETCHING"}

    rapidapi_sandbox.update_knobs(latency_ms=0)
    summary = await profile_fetcher(batch_size=6)
    assert summary.metrics.items_processed == 0  # too fresh: maybe still running elsewhere

    with session_scope(url) as session:  # mock time: the claim is now 31 minutes old
        session.execute(update(ProfileEntry).values(updated_at=utcnow() - timedelta(minutes=31)))
    summary = await profile_fetcher(batch_size=6)

    assert summary.metrics.items_processed == summary.metrics.items_created == 6
    assert {r.status for r in entry_rows(url).values()} == {"COMPLETED"}
    assert history_rows(url)[-1].metrics["recovered_orphans"] == 6


@pytest.mark.parametrize("bad_batch", [0, -3])
async def test_bad_parameters_are_refused_before_any_work(app_env, bad_batch):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        await profile_fetcher(batch_size=bad_batch)
    assert history_rows(app_env["DATABASE_URL"]) == []
