"""Execute one claimed application job as a Prefect task run (seed 002)."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Protocol

from prefect import task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run, task_run

from core.cron import next_run
from core.db import session_scope
from core.db.types import utcnow
from core.jobqueue import repo
from core.jobqueue.models import Job
from core.jobqueue.registry import get_job_type, parse_job
from core.settings import get_settings
from tasks._common import db_url

log = logging.getLogger("jobpipes.jobs_worker")


class _Progress:
    """Writes progress to the ``jobs`` row and to a Prefect progress artifact.

    The artifact is created on the first report, so jobs that report nothing cost no
    artifact API calls.
    """

    def __init__(self, url: str, job_id: uuid.UUID, attempt: int) -> None:
        self._url, self._job_id, self._attempt = url, job_id, attempt
        self.artifact_id: Any = None

    async def report(self, message: str, percent: int | None = None) -> None:
        with session_scope(self._url) as session:
            repo.report_progress(session, self._job_id, self._attempt, message, percent)
        if percent is None:
            return
        value = float(max(0, min(100, percent)))
        if self.artifact_id is None:
            self.artifact_id = await acreate_progress_artifact(progress=value, description=message)
        else:
            await aupdate_progress_artifact(self.artifact_id, progress=value, description=message)


class _Heartbeat(threading.Thread):
    """Beats from its own thread, so a handler that blocks the event loop still looks alive;
    only a dead or frozen process stops it, and only that makes the job an orphan."""

    def __init__(self, url: str, job_id: uuid.UUID, attempt: int, every: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self._url, self._job_id, self._attempt, self._every = url, job_id, attempt, every
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._every):
            try:
                with session_scope(self._url) as session:
                    if not repo.heartbeat(session, self._job_id, self._attempt):
                        log.warning("job %s attempt %d was taken over by orphan recovery; its result "
                                    "will not be recorded", self._job_id, self._attempt)
                        return
            except Exception as exc:  # noqa: BLE001 - a database blip must not kill the job
                log.warning("heartbeat of job %s failed: %s", self._job_id, exc)

    def stop(self) -> None:
        self._stop_event.set()


@task(name="execute-job", task_run_name="{job_type}-{job_id}", cache_policy=NO_CACHE)
async def execute_job(job_id: str, job_type: str, attempt: int) -> str:
    """Validate the claimed job's data, run its handler, mark it Completed or Failed.

    Every write is fenced by ``attempt``: if orphan recovery gave the job to another worker
    meanwhile, this attempt's progress and outcome are not written (no double completion).
    """
    settings = get_settings()
    url = db_url(settings)
    jid = uuid.UUID(job_id)
    with session_scope(url) as session:
        owned = repo.set_prefect_run(session, jid, attempt, flow_run_id=_str(flow_run.get_id()),
                                     task_run_id=_str(task_run.get_id()))
        row = session.get(Job, jid)
        data = dict(row.job_data) if row else {}
    if not owned:  # presumed dead before it even started: another attempt owns the job now
        log.warning("job %s attempt %d was re-queued before it started; not running it", job_id, attempt)
        return job_id
    try:
        kind = get_job_type(job_type)
        job = parse_job(kind, data)
    except Exception as exc:
        with session_scope(url) as session:
            repo.finish(session, jid, attempt, error=str(exc))
        raise
    progress = _Progress(url, jid, attempt)
    beat = _Heartbeat(url, jid, attempt, settings.jobs_worker.heartbeat_seconds)
    beat.start()
    try:
        await kind.handler(job, progress)
    except Exception as exc:
        with session_scope(url) as session:
            repo.finish(session, jid, attempt, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        beat.stop()
    with session_scope(url) as session:
        recorded = repo.finish(session, jid, attempt)
    if not recorded:
        log.warning("job %s attempt %d finished after another worker took it over; not recorded",
                    job_id, attempt)
    if progress.artifact_id is not None:
        await aupdate_progress_artifact(progress.artifact_id, progress=100.0,
                                        description=f"{job_type} completed")
    return job_id


def _str(value: object) -> str | None:
    return str(value) if value else None


class WorkerLoop(Protocol):
    async def serve_session(self) -> int: ...


# The jobs workers of this process by name, registered by the worker itself: the session
# flow takes the name (a flow parameter must be plain data), not the worker object.
ACTIVE_WORKERS: dict[str, WorkerLoop] = {}


def enqueue_scheduled(name: str) -> str | None:
    """Enqueue the next run of scheduled job ``name``; None when it is missing or disabled."""
    now = utcnow()
    with session_scope(db_url()) as session:
        scheduled = repo.get_scheduled(session, name)
        if scheduled is None or not scheduled.is_enabled:
            return None
        job_id = repo.enqueue(session, scheduled.job_type, dict(scheduled.job_data), scheduled.id)
        scheduled.last_run_time = now
        scheduled.next_run_time = next_run(scheduled.cron_expression, scheduled.timezone, now)
    return str(job_id)
