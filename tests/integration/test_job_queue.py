"""The application job queue on PostgreSQL with real workers (in-process and killed subprocesses)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.settings import PREFECT_API_URL
from prefect.states import Crashed
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

import tests.jobqueue_handlers as handlers
from core.config import PROJECT_ROOT
from core.db import session_scope
from core.db.engine import get_engine
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.jobqueue import repo, start_job
from core.jobqueue.examples import PurgeExpiredRegistrationsJob, SendEmailJob
from core.jobqueue.models import Job, Registration
from core.jobqueue.registry import UnknownJobType, type_name
from core.settings import get_settings
from deployments.control.scheduled_jobs import add_or_update_scheduled_job, remove_scheduled_job
from deployments.worker.jobs_worker import JobsWorker
from flows.jobqueue import SCHEDULE_DEPLOYMENT, enqueue_scheduled_job
from flows.jobqueue_worker import jobs_worker_session
from tests.conftest import reload_settings


@pytest.fixture
def queue_env(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("JOBS_MODULES", "core.jobqueue.examples,tests.jobqueue_handlers")
    monkeypatch.setenv("JOBS_POLL_INTERVAL_SECONDS", "0.1")
    monkeypatch.setenv("JOBS_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.setenv("JOBQUEUE_MARKERS", str(tmp_path / "markers"))
    reload_settings()
    return app_env


def jobs(url: str) -> list[Job]:
    with session_scope(url) as session:
        return list(session.execute(select(Job).order_by(Job.created_at)).scalars())


def enqueue(url: str, *jobs_: object) -> list[uuid.UUID]:
    with session_scope(url) as session:
        return [start_job(session, j) for j in jobs_]  # type: ignore[arg-type]


def markers(kind: str, token: str) -> int:
    return len(list(handlers.markers().glob(f"{token}.{kind}.*")))


async def run_worker_until(condition: Callable[[], bool], timeout: float = 60, name: str = "w-test",
                           worker: JobsWorker | None = None) -> JobsWorker:
    worker = worker or JobsWorker(get_settings(), name=name)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            assert not task.done(), task.exception() if task.done() else None
            assert time.monotonic() < deadline, "condition not reached in time"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
    return worker


def all_finished(url: str, n: int) -> Callable[[], bool]:
    return lambda: len([j for j in jobs(url) if j.status in ("Completed", "Failed")]) >= n


def start_worker_process(name: str, tmp_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = os.environ | tmp_env | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    return subprocess.Popen([sys.executable, "-m", "deployments.worker.jobs_worker", "--name", name],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    code = proc.wait(timeout=30)
    if sig == signal.SIGTERM:
        assert code == 0, f"the worker did not stop cleanly on SIGTERM (exit {code})"


async def test_rollback_leaves_no_job_and_commit_runs_it_once(queue_env):
    url = queue_env["DATABASE_URL"]
    with Session(get_engine(url)) as session:
        with pytest.raises(RuntimeError), session.begin():
            session.execute(insert(Registration).values(email="a@example.com", created_at=utcnow()))
            start_job(session, handlers.RecordJob(token="rolled-back"))
            raise RuntimeError("the caller's business logic failed")
    assert jobs(url) == []
    with session_scope(url) as session:
        assert session.execute(select(Registration)).first() is None

    [job_id] = enqueue(url, handlers.RecordJob(token="committed"))
    await run_worker_until(all_finished(url, 1))
    [job] = jobs(url)
    assert (job.id, job.status, job.attempts) == (job_id, "Completed", 1)
    assert job.started_at and job.completed_at and job.flow_run_id
    assert markers("done", "committed") == 1 and markers("start", "rolled-back") == 0


def test_unknown_job_types_are_refused_at_start(queue_env):
    from pydantic import BaseModel

    class NotRegistered(BaseModel):
        x: int = 1

    with session_scope(queue_env["DATABASE_URL"]) as session, pytest.raises(UnknownJobType, match="NotRegistered"):
        start_job(session, NotRegistered())


async def test_progress_lands_in_the_row_and_in_a_prefect_artifact(queue_env):
    url = queue_env["DATABASE_URL"]
    enqueue(url, handlers.ProgressJob(steps=4))
    await run_worker_until(all_finished(url, 1))
    [job] = jobs(url)
    assert (job.status, job.progress_percent, job.progress_message) == ("Completed", 100, "step 4 of 4")
    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(job.flow_run_id)])))
    [artifact] = [a for a in artifacts if a.type == "progress"]
    assert artifact.data == 100.0


async def test_a_failing_handler_and_bad_job_data_fail_with_the_reason(queue_env, smtp_sink):
    url = queue_env["DATABASE_URL"]
    enqueue(url, handlers.ExplodingJob(reason="disk full"))
    with session_scope(url) as session:  # a payload that no longer matches the model
        session.add(Job(id=uuid.uuid4(), job_type="RecordJob", job_data={"seconds": "soon"},
                        status="Pending", created_at=utcnow(), attempts=0))
    await run_worker_until(all_finished(url, 2))
    # Stored by full type name; the row written with the bare class name was qualified.
    assert {j.job_type for j in jobs(url)} == {type_name(handlers.ExplodingJob), type_name(handlers.RecordJob)}
    by_type = {j.job_type.rsplit(".", 1)[-1]: j for j in jobs(url)}
    assert by_type["ExplodingJob"].status == "Failed"
    assert by_type["ExplodingJob"].error_message == "RuntimeError: disk full"
    assert by_type["ExplodingJob"].progress_percent == 10
    bad = by_type["RecordJob"]
    assert bad.status == "Failed"
    assert f"invalid job_data for {type_name(handlers.RecordJob)}" in bad.error_message
    assert "token: Field required" in bad.error_message and "seconds: Input should be a valid number" in bad.error_message
    # Failed jobs alert someone (issue 22 item 5): one e-mail listing both, with their errors.
    [mail] = [m for m in smtp_sink.messages if "jobs_worker FAILED" in m["Subject"]]
    body = mail.get_content()
    assert "2 job(s) of ExplodingJob, RecordJob" in mail["Subject"]
    assert f"job {by_type['ExplodingJob'].id} ({type_name(handlers.ExplodingJob)}, attempt 1): RuntimeError: disk full" in body
    assert f"job {bad.id} ({type_name(handlers.RecordJob)}" in body and "invalid job_data for" in body


async def test_the_concurrency_limit_holds_with_20_jobs_of_one_type(queue_env, monkeypatch):
    url = queue_env["DATABASE_URL"]
    monkeypatch.setenv("JOBS_DEFAULT_CONCURRENCY", "3")
    reload_settings()
    handlers.PEAK.update(current=0, peak=0)
    enqueue(url, *[handlers.ProbeJob(seconds=1.0) for _ in range(20)])
    await run_worker_until(all_finished(url, 20), timeout=120)
    assert {j.status for j in jobs(url)} == {"Completed"}
    assert handlers.PEAK["peak"] == 3


def test_two_dispatchers_never_run_one_job_twice(queue_env, tmp_path):
    url = queue_env["DATABASE_URL"]
    tokens = [f"t{i}" for i in range(40)]
    enqueue(url, *[handlers.RecordJob(token=t, seconds=0.05) for t in tokens])
    env = {"JOBQUEUE_MARKERS": queue_env.get("JOBQUEUE_MARKERS", str(handlers.markers()))}
    workers = [start_worker_process(f"w{i}", env) for i in range(2)]
    try:
        wait_for(all_finished(url, 40), timeout=120)
    finally:
        for w in workers:
            kill(w, signal.SIGTERM)
    assert {j.status for j in jobs(url)} == {"Completed"}
    assert all(markers("start", t) == 1 and markers("done", t) == 1 for t in tokens)
    assert {j.claimed_by for j in jobs(url)} <= {"w0", "w1"}


def test_a_worker_under_another_name_recovers_a_killed_workers_job_by_liveness(queue_env):
    url = queue_env["DATABASE_URL"]
    assert get_settings().jobs_worker.orphaned_job_threshold == timedelta(minutes=30)  # the seed's, untouched
    [job_id] = enqueue(url, handlers.RecordJob(token="victim", seconds=3))
    env = {"JOBQUEUE_MARKERS": str(handlers.markers())}
    first = start_worker_process("pod-a", env)
    try:
        wait_for(lambda: markers("start", "victim") == 1)
    finally:
        kill(first)  # SIGKILL mid-run: no cleanup, the row says Running
    [job] = jobs(url)
    assert (job.status, job.claimed_by) == ("Running", "pod-a") and markers("done", "victim") == 0

    killed = time.monotonic()
    second = start_worker_process("pod-b", env)  # a new pod, a new name: no clock games
    try:
        wait_for(all_finished(url, 1), timeout=60)
    finally:
        kill(second, signal.SIGTERM)
    assert time.monotonic() - killed < 60  # heartbeat timeout (3 x 0.5 s), not 30 minutes
    [job] = jobs(url)
    assert (job.id, job.status, job.attempts, job.claimed_by) == (job_id, "Completed", 2, "pod-b")
    assert markers("start", "victim") == 2 and markers("done", "victim") == 1  # ran once after recovery


def test_an_attempt_taken_over_by_recovery_cannot_complete_the_job(queue_env):
    url = queue_env["DATABASE_URL"]
    [job_id] = enqueue(url, handlers.RecordJob(token="zombie"))
    with session_scope(url) as session:
        [first] = repo.claim(session, job_type=type_name(handlers.RecordJob), limit=1, worker="pod-a", type_limit=5)
    with session_scope(url) as session:  # mock time: pod-a stalled for a minute, no heartbeat
        stale = repo.stale_running(session, stale_after=timedelta(seconds=30), now=utcnow() + timedelta(minutes=1))
        assert stale == [(job_id, 1)]
        assert repo.requeue_or_fail(session, stale, reason="test", max_attempts=3) == (1, 0)
    with session_scope(url) as session:
        [second] = repo.claim(session, job_type=type_name(handlers.RecordJob), limit=1, worker="pod-b", type_limit=5)
    assert (first.attempts, second.attempts) == (1, 2)
    with session_scope(url) as session:  # pod-a wakes up: its writes are fenced out
        assert not repo.heartbeat(session, job_id, 1)
        assert not repo.finish(session, job_id, 1, error="late result")
        assert repo.requeue_or_fail(session, [(job_id, 1)], reason="stale view", max_attempts=3) == (0, 0)
    [job] = jobs(url)
    assert (job.status, job.claimed_by, job.error_message) == ("Running", "pod-b", None)
    with session_scope(url) as session:
        assert repo.finish(session, job_id, 2)
        assert not repo.finish(session, job_id, 2)  # completes exactly once
    [job] = jobs(url)
    assert (job.status, job.attempts) == ("Completed", 2)


async def test_a_job_whose_prefect_run_ended_is_recovered_at_start_despite_a_fresh_heartbeat(queue_env):
    url = queue_env["DATABASE_URL"]
    async with get_client() as client:
        run = await client.create_flow_run(jobs_worker_session, parameters={"worker_name": "gone-pod"})
        await client.set_flow_run_state(run.id, Crashed(), force=True)
    now = utcnow()
    with session_scope(url) as session:
        session.add(Job(id=uuid.uuid4(), job_type="RecordJob", job_data={"token": "crashed-run"},
                        status="Running", created_at=now, started_at=now, heartbeat_at=now, attempts=1,
                        claimed_by="gone-pod", flow_run_id=str(run.id)))
    await run_worker_until(all_finished(url, 1), name="new-pod", timeout=30)
    [job] = jobs(url)
    assert (job.status, job.attempts, job.claimed_by) == ("Completed", 2, "new-pod")
    assert markers("done", "crashed-run") == 1


def test_a_restarted_worker_reloads_its_running_jobs(queue_env):
    url = queue_env["DATABASE_URL"]
    enqueue(url, handlers.RecordJob(token="reload", seconds=3))
    env = {"JOBQUEUE_MARKERS": str(handlers.markers())}
    first = start_worker_process("same-name", env)
    try:
        wait_for(lambda: markers("start", "reload") == 1)
    finally:
        kill(first)
    again = start_worker_process("same-name", env)  # no clock games: the heartbeat went stale
    try:
        wait_for(all_finished(url, 1), timeout=90)
    finally:
        kill(again, signal.SIGTERM)
    [job] = jobs(url)
    assert job.status == "Completed" and job.attempts == 2 and markers("done", "reload") == 1


async def test_scheduled_jobs_are_kept_in_step_with_prefect(queue_env, smtp_sink):
    url = queue_env["DATABASE_URL"]
    with pytest.raises(ValueError, match="cron_expression"):
        add_or_update_scheduled_job(PurgeExpiredRegistrationsJob(), "61 * * * *")
    with pytest.raises(ValueError, match="timezone"):
        add_or_update_scheduled_job(PurgeExpiredRegistrationsJob(), "0 0 * * *", timezone="Mars/Base")

    info = add_or_update_scheduled_job(PurgeExpiredRegistrationsJob(max_expire_time=timedelta(days=30)),
                                       "0 0 * * *", timezone="Europe/Madrid")
    local = info.next_run_time.astimezone(ZoneInfo("Europe/Madrid"))
    assert (local.hour, local.minute) == (0, 0) and info.next_run_time > utcnow()

    async def prefect_schedules() -> dict[str, object]:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(SCHEDULE_DEPLOYMENT)
            return {s.slug: s for s in await client.read_deployment_schedules(deployment.id)}

    [schedule] = (await prefect_schedules()).values()
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("0 0 * * *", "Europe/Madrid", True)
    assert schedule.parameters == {"name": "PurgeExpiredRegistrationsJob"}

    add_or_update_scheduled_job(PurgeExpiredRegistrationsJob(max_expire_time=timedelta(days=7)),
                                "30 3 * * 1", timezone="Europe/Madrid", enabled=False)
    [schedule] = (await prefect_schedules()).values()
    assert (schedule.schedule.cron, schedule.active) == ("30 3 * * 1", False)
    with session_scope(url) as session:
        [row] = session.execute(select(ScheduledJob)).scalars().all()
        assert (row.cron_expression, row.is_enabled, row.job_data["max_expire_time"]) == ("30 3 * * 1", False, "P7D")
        session.execute(update(ScheduledJob).values(is_enabled=True))
        now = utcnow()
        session.execute(insert(Registration), [
            {"email": "old@example.com", "created_at": now - timedelta(days=8)},
            {"email": "new@example.com", "created_at": now - timedelta(days=1)}])

    # What the Prefect schedule fires: one job enqueued, next/last run times advanced.
    job_id = enqueue_scheduled_job(name="PurgeExpiredRegistrationsJob")
    await run_worker_until(all_finished(url, 1))
    [job] = jobs(url)
    assert str(job.id) == job_id and job.status == "Completed"
    with session_scope(url) as session:
        assert [r.email for r in session.execute(select(Registration)).scalars()] == ["new@example.com"]
        row = session.execute(select(ScheduledJob)).scalar_one()
        assert row.last_run_time is not None and row.next_run_time > row.last_run_time

    assert remove_scheduled_job("PurgeExpiredRegistrationsJob") is True
    assert await prefect_schedules() == {}


async def test_send_email_job_goes_through_smtp(queue_env, smtp_sink):
    url = queue_env["DATABASE_URL"]
    enqueue(url, SendEmailJob(recipient_email="user@example.com", subject="Welcome!",
                              body="Thank you for registering!"))
    await run_worker_until(all_finished(url, 1))
    [job] = jobs(url)
    assert job.status == "Completed" and job.progress_message.startswith("Email sent successfully")
    [mail] = smtp_sink.messages
    assert (mail["To"], mail["Subject"]) == ("user@example.com", "Welcome!")
