"""The job-queue engine (seed 002 ``JobsWorker``): claims committed jobs and runs them on Prefect.

Each busy period is one ``jobs-worker-session`` flow run; each job (per-job mode) or each
claimed batch (batch mode) one task run in it (``tasks.jobqueue``). Claims are disjoint
(``FOR UPDATE SKIP LOCKED``), the per-type concurrency limit holds across workers (claims of
a type are serialised and count the Running jobs of that type), and a job whose worker died
is found by liveness, whatever the worker was called (a heartbeat older than
``missedHeartbeats`` periods, or a Prefect run that ended) and re-queued, at start-up and
periodically. On PostgreSQL the worker wakes on LISTEN/NOTIFY the moment a job commits;
otherwise it polls. The process around it (signals, CLI) is ``deployments.worker.jobs_worker``.

Every database step (claims, orphan recovery, the writer's grouped writes) rides out an outage
(``tasks._common.ride_out``, ``database.outageBudgetSeconds``); past the budget the session
(flow run) ends with the reason once its jobs in flight have finished, and the worker waits
for the database and starts a new session when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from prefect import flow
from prefect.runtime import flow_run

from core.db import session_scope
from core.db.outage import is_db_outage
from core.jobqueue import repo
from core.jobqueue.recovery import dead_run_reason
from core.jobqueue.registry import aliases, get_job_type, load_modules, registered
from core.jobqueue.writer import JobWriter
from core.notify import QUEUE_JOB_NAME, deliver, failed_jobs_email, job_policy, should_notify
from core.settings import Settings, get_settings
from prefect_api import run_state_types
from tasks._common import db_url, ride_out, ride_out_db
from tasks.jobqueue import Claimed, execute_batch, execute_job, quiet_per_job_success_logs

log = logging.getLogger("jobpipes.jobs_worker")
T = TypeVar("T")

ALERT_EVERY_SECONDS = 60.0  # failed jobs are e-mailed together, at most this often while busy
ALERT_GATHER_SECONDS = 5.0  # ... and only once the oldest unsent failure is this old

# The engines running in this process by name: the session flow's parameter is the name
# (flow parameters are stored by Prefect, so they stay plain data).
_WORKERS: dict[str, JobsWorker] = {}


@flow(name="jobs-worker-session", flow_run_name="{worker_name}")
async def jobs_worker_session(worker_name: str) -> int:
    """One busy period of a jobs worker; each job it runs is an ``execute-job`` task run.

    Returns the number of jobs started. The session ends after the worker has been idle
    for a while, so the Prefect UI shows one flow run per busy period.
    """
    return await _WORKERS[worker_name].serve_session()


class JobsWorker:
    """Claims committed jobs and runs them as task runs of ``jobs-worker-session`` flow runs.

    ``housekeeping``: coroutines run every ``scheduledJobsCheckInterval`` beside orphan
    recovery (the worker process passes the scheduled-job sync of ``deployments.control``).
    """

    def __init__(self, settings: Settings | None = None, name: str | None = None, *,
                 housekeeping: Sequence[Callable[[], Awaitable[object]]] = ()) -> None:
        self.settings = settings or get_settings()
        self._chores = tuple(housekeeping)
        self.cfg = self.settings.jobs_worker
        self.name = name or self.cfg.name or socket.gethostname()
        self.url = db_url(self.settings)
        self.in_flight: Counter[str] = Counter()
        self.writer = JobWriter(self.url, heartbeat_seconds=self.cfg.heartbeat_seconds,
                                outage_budget=self.settings.database.outage_budget_seconds)
        self._hints: set[str] = set()  # types NOTIFYed, or left with work by a full claim
        self._warned: set[str] = set()  # unregistered types with Pending jobs, warned about once
        self._tasks: set[asyncio.Task[object]] = set()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._next_orphans = self._next_sync = 0.0
        self.failures: list[dict[str, object]] = []  # recorded job failures not e-mailed yet
        self._next_alert = 0.0
        self._first_failure: float | None = None
        # A session (one flow run) ends after this long without work.
        self.session_idle_seconds = max(5.0, self.cfg.poll_interval_seconds * 10)

    # --- recovery -------------------------------------------------------------------------
    async def recover_orphans(self) -> tuple[int, int]:
        """Re-queue (or, after ``maxAttempts``, fail) Running jobs that nothing keeps alive,
        whichever worker claimed them: heartbeat older than ``stale_after``, or a Prefect
        task run / session flow run that has ended. Runs at start-up and every
        ``orphan_check_every``."""
        requeued, failed, running = await ride_out_db(self._requeue_stale, what="the orphan recovery")
        if running:
            flows, tasks = await run_state_types([j.flow_run_id for j in running], [j.task_run_id for j in running])
            for job in running:
                reason = dead_run_reason(flows.get(job.flow_run_id or ""), tasks.get(job.task_run_id or ""))
                if reason is None:
                    continue
                r, f = await ride_out_db(self._requeue, [(job.id, job.attempts)], f"orphaned: {reason}",
                                         what="the orphan recovery")
                requeued, failed = requeued + r, failed + f
        if requeued or failed:
            log.warning("worker %s: orphan recovery: %d re-queued, %d ended for good (failed, or cancelled by request)", self.name, requeued, failed)
        return requeued, failed

    def _requeue_stale(self) -> tuple[int, int, list[repo.RunningJob]]:
        """Re-queue (or fail) the silent Running jobs; the Running jobs whose Prefect runs are known."""
        with session_scope(self.url) as session:
            stale = repo.stale_running(session, stale_after=self.cfg.stale_after)
            requeued, failed = repo.requeue_or_fail(
                session, stale, max_attempts=self.cfg.max_attempts,
                reason=f"orphaned: no heartbeat for {self.cfg.stale_after}")
            return requeued, failed, repo.running_with_prefect_runs(session)

    def _requeue(self, jobs: list[repo.JobAttempt], reason: str) -> tuple[int, int]:
        with session_scope(self.url) as session:
            return repo.requeue_or_fail(session, jobs, reason=reason, max_attempts=self.cfg.max_attempts)

    # --- dispatch -------------------------------------------------------------------------
    def claim_available(self, flow_run_id: str | None = None) -> list[list[repo.ClaimedJob]]:
        """Claim as many Pending jobs as the per-type and per-worker limits allow: a list of
        groups, each run by one task run (one job in per-job mode, a batch in batch mode).

        The types tried are those NOTIFYed or left with work by the last claim; without
        such hints (polling, SQLite) one query lists the types with Pending jobs."""
        free_total = self.cfg.max_parallel - sum(self.in_flight.values())
        groups: list[list[repo.ClaimedJob]] = []
        if free_total <= 0:
            return groups
        known = set(registered())
        self._warn_unregistered(self._hints - known - set(aliases()))
        hints, self._hints = self._hints & known, set()
        if not hints:
            with session_scope(self.url) as session:
                pending = set(repo.pending_types(session))
                short = aliases()
                if pending & set(short):  # rows written with a class name (plain SQL, older rows)
                    repo.qualify_job_types(session, {s: short[s] for s in pending & set(short)})
                    pending = {short.get(t, t) for t in pending}
                hints = pending & known
                self._warn_unregistered(pending - known)
        for job_type in sorted(hints):
            batch = self.mode_of(job_type) == "batch"
            free = min(free_total, self.cfg.limit_for(job_type) - self.in_flight[job_type],
                       self.cfg.batch_size if batch else free_total)
            # While jobs of the type run, claim in chunks (a quarter of the slots), not one
            # job per freed slot: a claim is a transaction, and the slots refill in time.
            chunk = max(1, min(self.cfg.max_parallel, self.cfg.limit_for(job_type)) // 4)
            if free <= 0 or (free < chunk and self.in_flight[job_type]):
                self._hints.add(job_type)  # still has work once slots free
                continue
            with session_scope(self.url) as session:
                jobs = repo.claim(session, job_type=job_type, limit=free, worker=self.name,
                                  type_limit=self.cfg.limit_for(job_type), flow_run_id=flow_run_id)
            if len(jobs) == free:
                self._hints.add(job_type)
            self.writer.track((j.id, j.attempts) for j in jobs)
            free_total -= len(jobs)
            groups += [jobs] if batch and jobs else [[j] for j in jobs]
        return groups

    def _warn_unregistered(self, types: set[str]) -> None:
        """Once per type: Pending jobs of a type no handler is registered for wait for ever here."""
        for job_type in sorted(types - self._warned):
            self._warned.add(job_type)
            log.warning("worker %s: jobs of type %s are Pending, but no handler is registered for it here "
                        "(registered: %s); add its module to jobsWorker.modules", self.name, job_type,
                        ", ".join(registered()) or "none")

    def mode_of(self, job_type: str) -> str:
        return self.cfg.mode_for(job_type, get_job_type(job_type).mode)

    def _start(self, jobs: list[repo.ClaimedJob]) -> None:
        job_type = jobs[0].job_type
        self.in_flight[job_type] += len(jobs)
        claimed = Claimed(jobs, self.writer, self.failures, cancel_grace=self.cfg.cancel_grace_seconds)
        label = job_type.rsplit(".", 1)[-1]  # the task run's name: the class name reads better in the UI

        async def run() -> None:
            try:
                if self.mode_of(job_type) == "batch":
                    await execute_batch(job_type=job_type, size=len(jobs), claimed=claimed, label=label,
                                        return_state=True)  # type: ignore[misc]  # async task: a coroutine at run time
                else:
                    await execute_job(job_id=str(jobs[0].id), job_type=job_type, claimed=claimed, label=label,
                                      return_state=True)  # type: ignore[misc]  # async task: a coroutine at run time
            finally:
                self.in_flight[job_type] -= len(jobs)
                self._wake.set()

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        """Wake the loop on NOTIFY (PostgreSQL only); delivered only for committed jobs."""
        import psycopg

        from core.db.engine import libpq_url

        dsn = libpq_url(self.url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
                    async for notify in conn.notifies():
                        if notify.payload.startswith(repo.CANCEL_PREFIX):
                            self.writer.beat_now()  # a cancel request: heartbeat (and see it) now
                            continue
                        self._hints.add(notify.payload)
                        self._wake.set()
            except Exception as exc:  # noqa: BLE001 - fall back to polling until it reconnects
                log.warning("LISTEN failed (%s); polling", exc)
                await asyncio.sleep(5)

    async def _wake_on_stop(self) -> None:
        """A stop ends any wait at once, however long the poll interval."""
        await self._stop.wait()
        self._wake.set()

    async def alert_failures(self, *, now: bool = False) -> int:
        """E-mail the recorded job failures (seed 002's failed jobs alert someone): one e-mail
        for all of them, at most every ``ALERT_EVERY_SECONDS`` and once the oldest is
        ``ALERT_GATHER_SECONDS`` old, unless ``now`` (a session's end); the policy is
        ``notify.jobs.jobs_worker`` (default ``notify.policy``). Returns how many it listed."""
        if not self.failures:
            self._first_failure = None
            return 0
        t = time.monotonic()
        self._first_failure = self._first_failure or t
        # A burst (a batch failing together) is one e-mail: wait until the oldest is a few s old.
        if not now and (t < self._next_alert or t - self._first_failure < ALERT_GATHER_SECONDS):
            return 0
        self._first_failure = None
        failures, self.failures[:] = list(self.failures), []
        self._next_alert = time.monotonic() + ALERT_EVERY_SECONDS
        notify = self.settings.notify
        if not (notify.enabled and should_notify(job_policy(QUEUE_JOB_NAME, None, notify), "FAILED")):
            return 0
        msg = failed_jobs_email(self.name, failures, sender=notify.email_from, to=notify.email_to)
        try:
            await asyncio.to_thread(deliver, msg, self.settings.smtp, self.settings.outbox_dir)
        except Exception as exc:  # noqa: BLE001 - the jobs are recorded FAILED; a lost e-mail must not stop the worker
            log.warning("worker %s: failed-jobs e-mail not sent: %s", self.name, exc)
        return len(failures)

    async def _housekeeping(self) -> None:
        await self.alert_failures()
        now = time.monotonic()
        if now >= self._next_orphans:
            await self.recover_orphans()
            self._next_orphans = now + self.cfg.orphan_check_every.total_seconds()
        if now >= self._next_sync:
            for chore in self._chores:
                try:
                    await chore()
                except Exception as exc:  # noqa: BLE001 - retried next interval
                    log.warning("%s failed: %s", getattr(chore, "__name__", chore), exc)
            self._next_sync = now + self.cfg.scheduled_jobs_check_interval.total_seconds()

    async def _wait(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_seconds)

    async def serve_session(self) -> int:
        """Inside a ``jobs-worker-session`` flow run: claim and run jobs until idle. A database
        outage past its budget ends the session (raised) once the jobs in flight have finished."""
        started = 0
        idle_since = time.monotonic()
        session_run = str(flow_run.get_id() or "") or None

        async def claim() -> list[list[repo.ClaimedJob]]:  # on the event loop, as ever: it owns the worker's state
            return self.claim_available(session_run)

        try:
            while not self._stop.is_set():
                await self._housekeeping()
                claimed = await ride_out(claim, what="the jobs' claim")
                for jobs in claimed:
                    self._start(jobs)
                started += sum(len(jobs) for jobs in claimed)
                if claimed or self._tasks:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= self.session_idle_seconds:
                    break
                await self._wait()
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.alert_failures(now=True)
        return started

    async def _until_the_database_answers(self, step: Callable[[], Awaitable[T]]) -> T:
        """``await step()``; past its outage budget, logged once, and tried again until the
        database answers (a worker outlives any outage; its jobs wait as Pending or Running)."""
        since: float | None = None
        while True:
            try:
                result = await step()
            except Exception as exc:
                if not is_db_outage(exc) or self._stop.is_set():
                    raise
                if since is None:
                    since = time.monotonic()
                    log.error("worker %s: database unavailable beyond the outage budget (%s); waiting for it",
                              self.name, str(exc).strip().splitlines()[0][:200])
                await asyncio.sleep(max(1.0, self.cfg.poll_interval_seconds))
                continue
            if since is not None:
                log.warning("worker %s: database back after %.1f s more", self.name, time.monotonic() - since)
            return result

    def _has_pending(self) -> bool:
        known = set(registered()) | set(aliases())
        with session_scope(self.url) as session:
            pending = set(repo.pending_types(session))
        self._warn_unregistered(pending - known)
        return bool(pending & known)

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set; in-flight jobs are awaited before returning."""
        self._stop = stop or asyncio.Event()
        waker = asyncio.create_task(self._wake_on_stop())
        load_modules(self.cfg.modules)
        quiet_per_job_success_logs()
        requeued, failed = await self._until_the_database_answers(self.recover_orphans)  # by liveness, not by name
        self._next_orphans = time.monotonic() + self.cfg.orphan_check_every.total_seconds()
        types = ", ".join(f"{t.rsplit('.', 1)[-1]} ({self.mode_of(t)}, limit {self.cfg.limit_for(t)})"
                          for t in registered()) or "none (jobsWorker.modules registers them)"
        log.info("worker %s started: job types %s; maxParallel %d, poll %gs, heartbeat %gs, database %s; "
                 "recovered %d orphaned jobs (%d failed)", self.name, types, self.cfg.max_parallel,
                 self.cfg.poll_interval_seconds, self.cfg.heartbeat_seconds, self.url.split(":", 1)[0],
                 requeued, failed)
        listener = asyncio.create_task(self._listen()) if self.url.startswith("postgres") else None
        _WORKERS[self.name] = self
        try:
            while not self._stop.is_set():
                await self._until_the_database_answers(self._housekeeping)
                if await self._until_the_database_answers(
                        lambda: ride_out_db(self._has_pending, what="the pending jobs")):
                    await jobs_worker_session(worker_name=self.name, return_state=True)
                else:
                    await self._wait()
        finally:
            _WORKERS.pop(self.name, None)
            for helper in (listener, waker):
                if helper:
                    helper.cancel()
            await asyncio.to_thread(self.writer.close)
