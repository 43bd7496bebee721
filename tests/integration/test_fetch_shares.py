"""One profile-fetcher run over several workers: shares taken by Prefect task workers.

The run is this test's process (a flow run on the session's Prefect server); the task workers
are real ``python -m deployments.worker.task_worker`` processes subscribed to that server,
fetching from the session's sandbox into the session's PostgreSQL database.
- Two task workers and ``parallel_runs=3``: each share starts within 5 s of the run, the work
  is spread by what each takes (all three claimants finish entries), every entry completes
  once, the run's history row counts all of it and the ledger equals what the sandbox billed.
- A task worker SIGKILLed mid-share: the run releases what the share held (adopted, billed,
  re-queued), fetches it itself and ends SUCCESS with every entry COMPLETED; the ledger equals
  the sandbox's billed count; Prefect shows the share Crashed.
- No task worker at all: the run does the work alone and cancels its share, in the database
  and in Prefect.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prefect import get_client
from prefect.settings import get_current_settings
from sqlalchemy import func, select

from core.db import session_scope
from core.profiles.models import EntryStatus, FetchShare, ProfileEntry, ShareState
from flows.profiles import profile_fetcher
from tests.conftest import reload_settings
from tests.factories import history_rows, ledger, seed_entries, set_quota, urns

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120


def billed_by_provider(sandbox: object) -> int:
    return sandbox.stats()["statuses"].get(200, 0)  # type: ignore[attr-defined]


def _worker_env(app_env: dict[str, str]) -> dict[str, str]:
    settings = get_current_settings()
    return {**os.environ, **app_env, "PREFECT_API_URL": str(settings.api.url),
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(settings.results.local_storage_path),
            "PREFECT_LOGGING_LEVEL": "INFO"}


@contextmanager
def task_workers(app_env: dict[str, str], tmp: Path, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` task-worker processes, each subscribed before this returns."""
    procs, logs = [], []
    for i in range(count):
        log = tmp / f"task-worker-{i}.log"
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "deployments.worker.task_worker"], cwd=ROOT,
                                      env=_worker_env(app_env), stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all("Subscribing to runs" in log.read_text(errors="replace") for log in logs):
            assert all(p.poll() is None for p in procs), "\n".join(log.read_text()[-2000:] for log in logs)
            assert time.monotonic() < deadline, "task workers did not subscribe"
            time.sleep(0.2)
        time.sleep(1.0)  # the websocket subscription is open just after the line
        yield procs
    finally:
        stopped = [p for p in procs if p.poll() is None]
        for p in stopped:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    for p, log in zip(procs, logs, strict=True):  # SIGTERM stops a task worker cleanly
        if p in stopped:
            text = log.read_text(errors="replace")
            assert p.returncode == 0 and "Traceback" not in text, text[-3000:]


def _shares(url: str) -> list[FetchShare]:
    with session_scope(url) as session:
        rows = session.execute(select(FetchShare).order_by(FetchShare.created_at)).scalars().all()
        session.expunge_all()
        return list(rows)


def _finished_by(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {c: n for c, n in session.execute(
            select(ProfileEntry.claimed_by, func.count()).where(ProfileEntry.status == EntryStatus.COMPLETED.value)
            .group_by(ProfileEntry.claimed_by)).all()}


def _statuses(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {s: n for s, n in session.execute(
            select(ProfileEntry.status, func.count()).group_by(ProfileEntry.status)).all()}


async def _task_run_state(task_run_id: str) -> str:
    async with get_client() as client:
        run = await client.read_task_run(uuid.UUID(task_run_id))
    assert run.state is not None
    return run.state.type.value


def test_shares_spread_one_run_over_task_workers(app_env: dict[str, str], pg_url: str, rapidapi_sandbox: object,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPIDAPI_ENTRIES_PER_TASK", "100")
    reload_settings()
    app_env = {**app_env, "RAPIDAPI_ENTRIES_PER_TASK": "100"}
    rapidapi_sandbox.update_knobs(latency_ms=50)  # type: ignore[attr-defined]
    seed_entries(pg_url, urns(600))
    set_quota(pg_url, limit=10_000)
    with task_workers(app_env, tmp_path, 2):
        started = time.time()
        result = asyncio.run(profile_fetcher(batch_size=10, parallel_runs=3))
    assert result is not None and result.status == "SUCCESS", result
    assert _statuses(pg_url) == {EntryStatus.COMPLETED.value: 600}
    rows = _shares(pg_url)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(tmp_path.glob("task-worker-*.log")))
    assert [r.state for r in rows] == [ShareState.DONE.value] * 2, logs
    assert len({r.worker for r in rows}) == 2  # one on each worker
    for row in rows:
        assert row.started_at is not None and row.started_at.timestamp() - started < 5.0, row
    by = _finished_by(pg_url)
    assert len(by) == 3 and sum(by.values()) == 600 and min(by.values()) >= 50, by  # all three took work
    (history,) = history_rows(pg_url)
    assert (history.total_processed, history.successful_count) == (600, 600)
    q = ledger(pg_url)
    assert (q.reserved, q.calls_used) == (0, billed_by_provider(rapidapi_sandbox)) == (0, 600)


def test_a_share_whose_worker_dies_is_released_and_finished_by_its_run(
        app_env: dict[str, str], pg_url: str, rapidapi_sandbox: object, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPIDAPI_SHARE_DEAD_AFTER_SECONDS", "6")
    monkeypatch.setenv("RAPIDAPI_ENTRIES_PER_TASK", "100")
    reload_settings()
    rapidapi_sandbox.update_knobs(latency_ms=100)  # type: ignore[attr-defined]
    seed_entries(pg_url, urns(500))
    set_quota(pg_url, limit=10_000)
    with task_workers(app_env, tmp_path, 1) as (worker,):
        async def run_and_kill() -> object:
            run = asyncio.ensure_future(profile_fetcher(batch_size=10, parallel_runs=2))
            deadline = time.monotonic() + 60
            while not any(n >= 30 for c, n in _finished_by(pg_url).items() if c and c.startswith("share-")):
                assert time.monotonic() < deadline and not run.done(), "the share never fetched"
                await asyncio.sleep(0.1)
            os.killpg(worker.pid, signal.SIGKILL)  # mid-batch: it holds claims, some sent
            return await run
        result = asyncio.run(run_and_kill())
    assert result is not None and result.status == "SUCCESS", result  # type: ignore[attr-defined]
    assert _statuses(pg_url) == {EntryStatus.COMPLETED.value: 500}
    (row,) = _shares(pg_url)
    assert row.state == ShareState.RELEASED.value
    assert row.task_run_id is not None and asyncio.run(_task_run_state(row.task_run_id)) == "CRASHED"
    q = ledger(pg_url)
    assert (q.reserved, q.calls_used) == (0, billed_by_provider(rapidapi_sandbox))
    (history,) = history_rows(pg_url)
    assert history.successful_count == 500


def test_without_task_workers_the_run_fetches_alone_and_cancels_its_share(
        app_env: dict[str, str], pg_url: str, rapidapi_sandbox: object) -> None:
    seed_entries(pg_url, urns(40))
    set_quota(pg_url, limit=1_000)
    result = asyncio.run(profile_fetcher(batch_size=10, parallel_runs=2))
    assert result is not None and result.status == "SUCCESS"
    assert _statuses(pg_url) == {EntryStatus.COMPLETED.value: 40}
    (row,) = _shares(pg_url)
    assert row.state == ShareState.CANCELLED.value
    assert row.task_run_id is not None and asyncio.run(_task_run_state(row.task_run_id)) == "CANCELLED"
    q = ledger(pg_url)
    assert (q.reserved, q.calls_used) == (0, billed_by_provider(rapidapi_sandbox)) == (0, 40)


def test_a_pushed_task_run_the_api_cannot_read_yet_is_read_again_and_never_stops_the_worker(
        app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load the server pushed a share before its task run was readable (404), which
    stopped the whole task worker; now it reads again with backoff, and one that never
    appears is skipped after ``UNSEEN_RUN_SECONDS``. Against the session's Prefect server."""
    from prefect.client.schemas.objects import TaskRun

    from deployments.worker import task_worker  # it sets a Prefect logging default when imported
    from tasks.profiles.share import fetch_share

    monkeypatch.setattr(task_worker, "UNSEEN_RUN_SECONDS", 1.0)

    async def read_both() -> tuple[TaskRun | None, TaskRun | None, float]:
        worker = task_worker._ShareWorker(fetch_share, limit=1)
        async with get_client() as client:
            worker._client = client
            real = await client.create_task_run(fetch_share, flow_run_id=None, dynamic_key="unseen-test")
            found = await worker._read(real)
            started = time.monotonic()
            never = await worker._read(TaskRun.model_validate({**real.model_dump(), "id": uuid.uuid4()}))
            return found, never, time.monotonic() - started

    found, never, waited = asyncio.run(read_both())
    assert found is not None and found.task_key == fetch_share.task_key
    assert never is None and 1.0 <= waited < 4.0, waited
