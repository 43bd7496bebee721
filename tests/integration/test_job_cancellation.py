# ruff: noqa: F811 - queue_env is the job-queue tests' fixture, imported
"""Cancelling job-queue jobs (seed 002's cancellation token; issue 22 item 8) on PostgreSQL
with a real worker and Prefect: from the control layer, the operations API and ``jobpipes``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client

import tests.jobqueue_handlers as handlers
from core.config import PROJECT_ROOT
from core.db import session_scope
from core.jobqueue import repo
from core.jobqueue.models import Job
from core.settings import get_settings
from deployments.api.app import create_app
from deployments.control import queue
from deployments.control.trigger import JobConflict
from deployments.worker.jobs_worker import JobsWorker
from tests.conftest import reload_settings
from tests.integration.test_job_queue import enqueue, jobs, markers, queue_env, run_worker_until  # noqa: F401

TOKEN = "cancel-test-token"


def job(url: str, job_id: uuid.UUID) -> Job:
    [found] = [j for j in jobs(url) if j.id == job_id]
    return found


def running_with_progress(url: str, job_id: uuid.UUID) -> bool:
    j = job(url, job_id)
    return j.status == "Running" and (j.progress_percent or 0) > 0


async def until(condition, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def work_while(url: str, action, done, *, timeout: float = 60) -> None:  # noqa: ANN001
    """Run a worker; call ``action()`` (in this loop) once, then wait for ``done()``."""
    worker = JobsWorker(get_settings(), name="w-cancel")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    try:
        await action()
        await until(done, timeout)
    finally:
        stop.set()
        await task


async def test_a_running_handler_sees_the_cancel_request_and_the_job_ends_cancelled(queue_env, monkeypatch):
    # A 30 s heartbeat: on PostgreSQL the request's NOTIFY makes the worker look at once.
    monkeypatch.setenv("JOBS_HEARTBEAT_SECONDS", "30")
    reload_settings()
    url = queue_env["DATABASE_URL"]
    [job_id] = enqueue(url, handlers.CancellableJob(token="coop", steps=600, seconds=0.05))
    asked: dict[str, float] = {}

    async def cancel_once_running() -> None:
        await until(lambda: running_with_progress(url, job_id))
        asked["at"] = time.monotonic()
        view = queue.cancel(str(job_id))
        assert view["status"] == "Running" and view["cancel_requested_at"] is not None

    await work_while(url, cancel_once_running, lambda: job(url, job_id).status != "Running")
    took = time.monotonic() - asked["at"]
    final = job(url, job_id)
    assert (final.status, final.error_message) == ("Cancelled", "cancelled by request")
    assert final.completed_at is not None and final.progress_percent < 100
    assert markers("start", "coop") == 1 and markers("done", "coop") == 0
    assert took < 10, f"the cancel took {took:.1f} s to reach the handler (heartbeat is 30 s)"
    async with get_client() as client:  # per-job mode: the job's task run is Cancelled, with the reason
        task_run = await client.read_task_run(uuid.UUID(final.task_run_id))
    assert task_run.state.type.value == "CANCELLED" and task_run.state.message == "cancelled by request"
    # asking again is harmless; a finished job cannot be cancelled
    assert queue.cancel(str(job_id))["status"] == "Cancelled"


async def test_a_handler_that_ignores_the_token_is_interrupted_after_the_grace(queue_env, monkeypatch):
    monkeypatch.setenv("JOBS_CANCEL_GRACE_SECONDS", "1")
    reload_settings()
    url = queue_env["DATABASE_URL"]
    [job_id] = enqueue(url, handlers.StubbornJob(token="stubborn", seconds=120))

    async def cancel_once_running() -> None:
        await until(lambda: job(url, job_id).status == "Running" and job(url, job_id).progress_message == "sleeping")
        queue.cancel(str(job_id))

    await work_while(url, cancel_once_running, lambda: job(url, job_id).status != "Running", timeout=30)
    final = job(url, job_id)
    assert final.status == "Cancelled"
    assert final.error_message == "cancelled: the handler did not stop within 1 s of the request, so it was interrupted"
    assert markers("interrupted", "stubborn") == 1 and markers("done", "stubborn") == 0


async def test_pending_jobs_cancel_at_once_and_retry_runs_them(queue_env):
    url = queue_env["DATABASE_URL"]
    cancelled_id, kept_id = enqueue(url, handlers.RecordJob(token="never"), handlers.RecordJob(token="kept"))
    view = queue.cancel(str(cancelled_id))
    assert (view["status"], view["error"]) == ("Cancelled", "cancelled by request before it started")
    await run_worker_until(lambda: job(url, kept_id).status == "Completed")
    assert markers("start", "never") == 0 and job(url, cancelled_id).status == "Cancelled"

    with pytest.raises(JobConflict, match=f"job {kept_id} already ended Completed"):
        queue.cancel(str(kept_id))
    with pytest.raises(JobConflict, match="only Failed or Cancelled jobs can be retried"):
        queue.retry(str(kept_id))
    with pytest.raises(queue.UnknownQueueJob, match="job_id: 'nope' is not a UUID"):
        queue.cancel("nope")
    with pytest.raises(queue.UnknownQueueJob, match="job_id: no job-queue job"):
        queue.retry(str(uuid.uuid4()))

    retried = queue.retry(str(cancelled_id))
    assert (retried["status"], retried["attempts"], retried["cancel_requested_at"]) == ("Pending", 0, None)
    await run_worker_until(lambda: job(url, cancelled_id).status == "Completed")
    assert markers("done", "never") == 1


async def test_one_job_of_a_batch_is_cancelled_and_the_others_complete(queue_env):
    url = queue_env["DATABASE_URL"]
    ids = enqueue(url, *(handlers.BatchCancellableJob(token=f"b{i}", steps=40, seconds=0.05) for i in range(4)))

    async def cancel_one() -> None:
        await until(lambda: all(job(url, i).status == "Running" for i in ids))
        queue.cancel(str(ids[0]))

    await work_while(url, cancel_one, lambda: all(job(url, i).status != "Running" for i in ids))
    assert [job(url, i).status for i in ids] == ["Cancelled", "Completed", "Completed", "Completed"]
    assert markers("done", "b0") == 0 and sum(markers("done", f"b{i}") for i in (1, 2, 3)) == 3


def test_orphan_recovery_ends_a_cancel_requested_job_cancelled_instead_of_rerunning_it(queue_env):
    url = queue_env["DATABASE_URL"]
    [job_id] = enqueue(url, handlers.RecordJob(token="dead"))
    with session_scope(url) as session:  # its worker died after the request
        [claimed] = repo.claim(session, job_type=repo.get_job(session, job_id).job_type, limit=1,
                               worker="gone", type_limit=5)
    queue.cancel(str(job_id))
    with session_scope(url) as session:
        assert repo.requeue_or_fail(session, [(job_id, claimed.attempts)], reason="orphaned: test",
                                    max_attempts=3) == (0, 1)
    final = job(url, job_id)
    assert final.status == "Cancelled" and final.error_message.startswith("cancelled by request")


async def test_the_api_and_the_jobpipes_command_cancel_list_and_retry(queue_env, monkeypatch):
    monkeypatch.setenv("BRAND_ADMIN_TOKEN", TOKEN)
    reload_settings()
    url = queue_env["DATABASE_URL"]
    first, second = enqueue(url, handlers.RecordJob(token="api"), handlers.RecordJob(token="cli"))
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ops",
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        assert (await api.post(f"/api/v1/queue/jobs/{first}/cancel", headers={"Authorization": "Bearer x"})
                ).status_code == 401
        answer = await api.post(f"/api/v1/queue/jobs/{first}/cancel")
        assert answer.status_code == 200 and answer.json()["status"] == "Cancelled"
        assert (await api.post(f"/api/v1/queue/jobs/{uuid.uuid4()}/cancel")).status_code == 404
        page = (await api.get("/api/v1/queue/jobs", params={"status": "cancelled"})).json()
        assert [i["id"] for i in page["items"]] == [str(first)] and page["total"] == 1
        bad = await api.get("/api/v1/queue/jobs", params={"status": "Done"})
        assert bad.status_code == 422 and bad.json()["detail"].startswith("status: 'Done' is not one of")
        assert (await api.get(f"/api/v1/queue/jobs/{first}")).json()["job_data"] == {"token": "api", "seconds": 0}
        assert (await api.post(f"/api/v1/queue/jobs/{first}/retry")).json()["status"] == "Pending"
        assert (await api.post(f"/api/v1/queue/jobs/{first}/retry")).status_code == 409

    env = {**queue_env, "BRAND_ADMIN_TOKEN": TOKEN}
    cancelled = _jobpipes(env, "queue", "cancel", str(second))
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{second}: Cancelled"
    listed = json.loads(_jobpipes(env, "queue", "list", "--type", "RecordJob", "--json").stdout)
    assert {i["id"]: i["status"] for i in listed["items"]} == {str(first): "Pending", str(second): "Cancelled"}
    table = _jobpipes(env, "queue", "list", "--status", "Cancelled")
    assert str(second) in table.stdout and "1 of 1 jobs" in table.stdout
    again = _jobpipes(env, "queue", "retry", str(first))
    assert again.returncode == 2 and again.stderr.strip() == \
        f"job {first} is Pending; only Failed or Cancelled jobs can be retried"
    assert _jobpipes(env, "queue", "cancel", "nope").stderr.strip() == "job_id: 'nope' is not a UUID"


def _jobpipes(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "jobpipes"
    return subprocess.run([str(command), *args], cwd=PROJECT_ROOT, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)
