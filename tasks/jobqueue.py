"""Execute claimed application jobs as Prefect task runs (seed 002): one task run per job
(``execute-job``, per-job mode) or one per claimed batch (``execute-job-batch``).

A handler that meets a provider's "later" (a 429 or 5xx after its client's retries, or no
answer) does not fail its job: the job is Pending again with a not-before time (the
provider's ``Retry-After``, else ``jobsWorker.deferSeconds``, at most ``deferMaxSeconds``) and a
worker claims it from then on, without a person."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import task_run
from prefect.states import Cancelled, Completed

from core.cron import next_run
from core.db import session_scope
from core.db.types import utcnow
from core.jobqueue import repo
from core.jobqueue.cancellation import JobCancelled
from core.jobqueue.grouped import Outcome
from core.jobqueue.models import JobStatus
from core.jobqueue.registry import InvalidJobData, JobType, get_job_type, parse_job
from core.jobqueue.writer import JobWriter
from core.runs.deferral import is_later, not_before
from core.settings import get_settings
from tasks._common import db_url, ride_out_db

log = logging.getLogger("jobpipes.jobs_worker")


class _Progress:
    """Progress of one attempt: buffered into the worker's grouped writes (``jobs`` row), and,
    in per-job mode, a Prefect progress artifact on the job's task run.

    The artifact is created on the first report with a percent, so jobs that report nothing
    cost no artifact API calls.
    """

    def __init__(self, writer: JobWriter, job: repo.ClaimedJob, *, artifacts: bool) -> None:
        self._writer, self.job_id, self.attempt, self._artifacts = writer, job.id, job.attempts, artifacts
        self.artifact_id: Any = None
        self.cancellation = writer.cancellation(job.id)

    async def report(self, message: str, percent: int | None = None) -> None:
        self._writer.touch(self.job_id, self.attempt, message=message, percent=percent)
        if percent is None or not self._artifacts:
            return
        value = float(max(0, min(100, percent)))
        if self.artifact_id is None:
            self.artifact_id = await acreate_progress_artifact(progress=value, description=message)
        else:
            await aupdate_progress_artifact(self.artifact_id, progress=value, description=message)


class Claimed:
    """The jobs claimed for one task run and the writer that fences their writes.

    Handed to the task as one opaque parameter: Prefect's parameter walk does not descend
    into it (a batch of dataclasses would be walked and copied on every task run)."""

    __slots__ = ("cancel_grace", "failures", "jobs", "writer")

    def __init__(self, jobs: list[repo.ClaimedJob], writer: JobWriter,
                 failures: list[dict[str, Any]] | None = None, *, cancel_grace: float = 30.0) -> None:
        self.jobs, self.writer, self.cancel_grace = jobs, writer, cancel_grace
        # where the task reports each recorded failure (the worker e-mails them)
        self.failures = failures if failures is not None else []


DEFERRED = "Deferred"  # how a job Pending again (its handler met a provider's "later") is listed


@dataclass
class Ran:
    """One job's run: what the batch artifact and log list."""

    job: repo.ClaimedJob
    status: str
    seconds: float
    error: str | None = None
    recorded: bool = True


@dataclass(frozen=True)
class Handled:
    """How the handler ended: ``error`` (None: it succeeded), ``cancelled``, and ``later``: the
    not-before time when the error was a provider's "later"."""

    error: str | None = None
    cancelled: bool = False
    later: datetime | None = None


class _Outcomes:
    """Hands the outcomes of jobs that finish in the same event-loop turn to the writer
    together (one statement), and tells each whether it was recorded."""

    def __init__(self, writer: JobWriter) -> None:
        self._writer = writer
        self._queued: list[tuple[Outcome, asyncio.Future[asyncio.Future[bool]]]] = []

    async def submit(self, outcome: Outcome) -> bool:
        loop = asyncio.get_running_loop()
        if not self._queued:
            loop.call_soon(self._flush)
        handed: asyncio.Future[asyncio.Future[bool]] = loop.create_future()
        self._queued.append((outcome, handed))
        return await (await handed)

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        for (_, handed), written in zip(queued, self._writer.finish(o for o, _ in queued), strict=True):
            handed.set_result(asyncio.wrap_future(written))


async def _handle(kind: JobType, job: repo.ClaimedJob, progress: _Progress, grace: float) -> Handled:
    """Run the handler. A cancel request the handler does not honour within ``grace`` seconds
    cancels its coroutine."""
    token = progress.cancellation
    if token.requested:  # cancelled while it waited in the batch: never started
        return Handled("cancelled before it started", True)
    try:
        parsed = parse_job(kind, job.job_data)
    except InvalidJobData as exc:
        return Handled(str(exc))
    work = asyncio.ensure_future(kind.handler(parsed, progress))
    asked = asyncio.ensure_future(token.wait())
    try:
        await asyncio.wait({work, asked}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            await asyncio.wait({work}, timeout=grace)
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            return Handled(f"cancelled: the handler did not stop within {grace:g} s of the request, "
                           "so it was interrupted", True)
        work.result()
    except JobCancelled:
        return Handled("cancelled by request", True)
    except asyncio.CancelledError:
        if work.done() and token.requested and not _cancelling():
            return Handled("cancelled by request", True)  # the handler stopped itself with CancelledError
        raise
    except Exception as exc:  # noqa: BLE001 - the job's outcome, recorded and reported
        if is_later(exc):
            cfg = get_settings().jobs_worker
            until = not_before(exc, defer_seconds=cfg.defer_seconds, defer_max_seconds=cfg.defer_max_seconds)
            return Handled(f"deferred until {until.isoformat()}: {type(exc).__name__}: {exc}", later=until)
        return Handled(f"{type(exc).__name__}: {exc}")
    finally:
        asked.cancel()
        if not work.done():  # this task run itself was cancelled: stop the handler too
            work.cancel()
    return Handled()


def _cancelling() -> int:
    """How many cancellations of the current asyncio task are pending (its own, not the handler's)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


async def _run(kind: JobType, job: repo.ClaimedJob, writer: JobWriter, progress: _Progress,
               outcomes: _Outcomes, grace: float) -> Ran:
    """Validate, run the handler, queue the outcome and wait until it is written."""
    t0 = time.perf_counter()
    if writer.is_lost(job.id):  # presumed dead before it started: another attempt owns the job now
        return Ran(job, "skipped: taken over", 0.0, recorded=False)
    handled = await _handle(kind, job, progress, grace)
    seconds = time.perf_counter() - t0
    outcome = Outcome(job.id, job.attempts, utcnow(), handled.error, handled.cancelled, handled.later)
    recorded = await outcomes.submit(outcome)
    if not recorded:
        log.warning("job %s attempt %d finished after another worker took it over; not recorded",
                    job.id, job.attempts)
    return Ran(job, DEFERRED if handled.later else outcome.status, seconds, handled.error, recorded)


@task(name="execute-job", task_run_name="{label}-{job_id}", cache_policy=NO_CACHE)
async def execute_job(job_id: str, job_type: str, claimed: Claimed, label: str = "") -> str | State:
    """Per-job mode: one claimed job as this task run; it fails when the job fails.

    Every write is fenced by the attempt: if orphan recovery gave the job to another worker
    meanwhile, this attempt's progress and outcome are not written (no double completion).
    """
    [job], writer = claimed.jobs, claimed.writer
    writer.touch(job.id, job.attempts, task_run_id=_str(task_run.get_id()))
    progress = _Progress(writer, job, artifacts=True)
    ran = await _run(get_job_type(job_type), job, writer, progress, _Outcomes(writer), claimed.cancel_grace)
    _report_failures(claimed, [ran])
    if ran.status == JobStatus.CANCELLED:
        return Cancelled(message=ran.error)  # the task run shows Cancelled, with how it stopped
    if ran.status == DEFERRED:  # Pending again: not a failure, and no person needed
        return Completed(name=DEFERRED, message=ran.error)
    if ran.error is not None:
        raise JobFailed(ran.error)
    if progress.artifact_id is not None and ran.recorded:
        await aupdate_progress_artifact(progress.artifact_id, progress=100.0, description=f"{job_type} completed")
    return job_id


class _QuietSuccess(logging.Filter):
    """Drops the engine's "Finished in state Completed()" line of ``execute-job`` task runs.

    In per-job mode that line, shipped to the Prefect API for every job, doubled the
    server's work per job (measured: ~2.8 -> ~1.5 ms of server CPU); the task run's
    Completed state says the same. Failures, retries and the handlers' own logs stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and getattr(record, "task_name", None) == "execute-job"
                    and str(record.msg).startswith("Finished in state Completed"))


_QUIET = _QuietSuccess()


def quiet_per_job_success_logs() -> None:
    """Install ``_QuietSuccess`` on Prefect's task run logger (idempotent)."""
    logger = logging.getLogger("prefect.task_runs")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


class JobFailed(Exception):
    """The job's handler failed (or its data did not validate); the message says why."""


@task(name="execute-job-batch", task_run_name="{label}-x{size}", cache_policy=NO_CACHE)
async def execute_batch(job_type: str, size: int, claimed: Claimed, label: str = "") -> dict[str, int]:
    """Batch mode: the claimed jobs of one type, all in this one task run (handlers run
    concurrently; the claim already respected the type's concurrency limit). Its table
    artifact and its log list every job with its status, duration and error."""
    jobs, writer = claimed.jobs, claimed.writer
    trid = _str(task_run.get_id())
    for job in jobs:
        writer.touch(job.id, job.attempts, task_run_id=trid)
    kind = get_job_type(job_type)
    outcomes = _Outcomes(writer)
    ran = await asyncio.gather(*(_run(kind, j, writer, _Progress(writer, j, artifacts=False), outcomes, claimed.cancel_grace)
                                 for j in jobs))
    _report_failures(claimed, ran)
    counts = Counter(r.status for r in ran)
    summary = f"{job_type}: {len(ran)} jobs, " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    logger = get_run_logger()
    logger.info("%s\n%s", summary, "\n".join(_line(r) for r in ran))
    for r in ran:
        if r.error is not None:
            logger.warning("job %s (attempt %d) %s: %s", r.job.id, r.job.attempts,
                           "deferred" if r.status == DEFERRED else "failed", r.error)
    await acreate_table_artifact(table=[_row(r) for r in ran], description=summary)
    return dict(counts)


def _report_failures(claimed: Claimed, ran: list[Ran]) -> None:
    claimed.failures.extend({"job_id": str(r.job.id), "job_type": r.job.job_type, "attempt": r.job.attempts,
                             "error": r.error} for r in ran
                            if r.status == JobStatus.FAILED and r.recorded)


def _row(r: Ran) -> dict[str, Any]:
    return {"job_id": str(r.job.id), "attempt": r.job.attempts, "status": r.status,
            "duration_ms": round(r.seconds * 1000, 2), "error": r.error or "", "recorded": r.recorded}


def _line(r: Ran) -> str:
    recorded = "" if r.recorded else " (not recorded: taken over)"
    return f"  {r.job.id} attempt {r.job.attempts}: {r.status} in {r.seconds * 1000:.1f} ms" \
           f"{recorded}{': ' + r.error if r.error else ''}"


def _str(value: object) -> str | None:
    return str(value) if value else None


async def enqueue_scheduled(name: str) -> str | None:
    """Enqueue the next run of scheduled job ``name``; None when it is missing or disabled.
    Rides out a database outage (``tasks._common.ride_out_db``)."""
    return await ride_out_db(_enqueue_scheduled, name, what=f"the enqueue of scheduled job {name}")


def _enqueue_scheduled(name: str) -> str | None:
    now = utcnow()
    with session_scope(db_url()) as session:
        scheduled = repo.get_scheduled(session, name)
        if scheduled is None or not scheduled.is_enabled:
            return None
        job_id = repo.enqueue(session, scheduled.job_type, dict(scheduled.job_data), scheduled.id)
        scheduled.last_run_time = now
        scheduled.next_run_time = next_run(scheduled.cron_expression, scheduled.timezone, now)
    return str(job_id)
