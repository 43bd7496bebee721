"""One writer thread per jobs worker: every write to the worker's Running jobs, grouped.

- **Outcomes** of finished jobs are written as soon as the thread is free (group commit:
  whatever finished while the previous write was in flight goes out in the next one), and
  the caller awaits the answer, so "done" is only reported once it is durable.
- **Heartbeats** of ALL the worker's Running jobs (claimed, waiting in a batch, or running)
  are one statement every ``heartbeat_seconds``. The thread is not the event loop's, so a
  handler that blocks the loop still looks alive; only a dead or frozen process stops it.
- **Cancel requests** come back from the heartbeat statement itself: a job whose
  ``cancel_requested_at`` is set gets its token set (``cancellation(job_id)``).
  ``beat_now()`` (on the request's NOTIFY) makes the next heartbeat immediate.
- **Progress** and Prefect task run ids are buffered (latest wins) and written within
  ``progress_seconds``, or earlier with the next outcome or heartbeat.

Every write is fenced by the attempt (``core.jobqueue.grouped``): a job that orphan
recovery took away is reported ``lost`` and nothing of that attempt is written again.

A database outage is ridden out (``core.db.outage``: backoff with jitter, one log line when it
starts and one when the database is back, for up to ``outage_budget`` seconds); past the budget
the writes are kept and tried again, so an outcome is never lost: a job whose outcome could not
be written meanwhile stays Running, and orphan recovery gives it back if the worker dies.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future

from core.db import session_scope
from core.db.outage import DEFAULT_BUDGET_S, is_db_outage, ride_out
from core.db.types import utcnow
from core.jobqueue.cancellation import Cancellation
from core.jobqueue.grouped import Outcome, Touch, Touched, finish_many, relax_commit, touch_many

log = logging.getLogger("jobpipes.jobs_worker")


class JobWriter:
    def __init__(self, url: str, *, heartbeat_seconds: float, progress_seconds: float = 0.25,
                 retry_seconds: float = 1.0, outage_budget: float = DEFAULT_BUDGET_S) -> None:
        self._url = url
        self._beat_every, self._progress_every, self._retry = heartbeat_seconds, progress_seconds, retry_seconds
        self._budget = outage_budget
        self._loop: asyncio.AbstractEventLoop | None = None  # the thread's own, to ride out an outage
        self._cv = threading.Condition()
        self._active: dict[uuid.UUID, int] = {}
        self._tokens: dict[uuid.UUID, Cancellation] = {}
        self._touches: dict[uuid.UUID, Touch] = {}
        self._outcomes: list[tuple[Outcome, Future[bool]]] = []
        self._touch_due = float("inf")
        self._next_beat = time.monotonic() + heartbeat_seconds
        self._closing = False
        self.lost: set[uuid.UUID] = set()
        self.statements = 0  # grouped statements written (the tests and the benchmark read it)
        self._thread = threading.Thread(target=self._run, name="jobs-writer", daemon=True)
        self._thread.start()

    # --- called from the event loop --------------------------------------------------------
    def track(self, jobs: Iterable[tuple[uuid.UUID, int]]) -> None:
        """Jobs this worker just claimed: heartbeat them until their outcome is written."""
        with self._cv:
            self._active.update(jobs)

    def is_lost(self, job_id: uuid.UUID) -> bool:
        return job_id in self.lost

    def cancellation(self, job_id: uuid.UUID) -> Cancellation:
        """The job's cancellation token, set when a heartbeat finds its cancel request."""
        with self._cv:
            return self._tokens.setdefault(job_id, Cancellation())

    def beat_now(self) -> None:
        """Heartbeat every tracked job now (a cancel request was NOTIFYed)."""
        with self._cv:
            self._next_beat = time.monotonic()
            self._cv.notify()

    def touch(self, job_id: uuid.UUID, attempt: int, *, message: str | None = None, percent: int | None = None,
              task_run_id: str | None = None) -> None:
        """Buffer progress and/or the task run id; written within ``progress_seconds``."""
        with self._cv:
            old = self._touches.get(job_id) or Touch(job_id, attempt)
            self._touches[job_id] = Touch(
                job_id, attempt, message if message is not None else old.message,
                percent if percent is not None else old.percent, task_run_id or old.task_run_id)
            if self._touch_due == float("inf"):
                self._touch_due = time.monotonic() + self._progress_every
                self._cv.notify()

    def finish(self, outcomes: Iterable[Outcome]) -> list[Future[bool]]:
        """Queue outcomes; each future says whether it was recorded (False: taken over)."""
        futures: list[Future[bool]] = []
        with self._cv:
            for outcome in outcomes:
                future: Future[bool] = Future()
                self._outcomes.append((outcome, future))
                futures.append(future)
            self._cv.notify()
        return futures

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(timeout)

    # --- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._serve()
        finally:
            if self._loop is not None:
                self._loop.close()

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not (self._outcomes or self._closing
                           or time.monotonic() >= min(self._touch_due, self._next_beat)):
                    self._cv.wait(max(0.0, min(self._touch_due, self._next_beat) - time.monotonic()))
                if self._closing and not (self._outcomes or self._touches):
                    return
                outcomes, self._outcomes = self._outcomes, []
                touches, self._touches, self._touch_due = self._touches, {}, float("inf")
                beat = time.monotonic() >= self._next_beat
                if beat:
                    self._next_beat = time.monotonic() + self._beat_every
                    for job_id, attempt in self._active.items():
                        touches.setdefault(job_id, Touch(job_id, attempt))
            try:
                touched, recorded = self._write_riding_out(list(touches.values()), [o for o, _ in outcomes])
            except Exception as exc:  # noqa: BLE001 - a database blip must not lose outcomes
                log.warning("jobs writer: write failed (%s); retrying in %g s", exc, self._retry)
                with self._cv:
                    self._outcomes[:0] = outcomes
                    for job_id, t in touches.items():
                        self._touches.setdefault(job_id, t)
                    self._touch_due = time.monotonic() + self._retry
                    if self._closing:
                        for _, future in self._outcomes:
                            if not future.done():  # a caller that gave up cancelled it
                                future.set_result(False)
                        return
                time.sleep(self._retry)
                continue
            self._settle(touches, touched, outcomes, recorded)

    def _write_riding_out(self, touches: list[Touch], outcomes: list[Outcome]) -> tuple[Touched, set[uuid.UUID]]:
        """``_write``; an outage is waited out on this thread's own event loop."""
        try:
            return self._write(touches, outcomes)
        except Exception as exc:
            if not is_db_outage(exc):
                raise

        async def again() -> tuple[Touched, set[uuid.UUID]]:
            return self._write(touches, outcomes)

        self._loop = self._loop or asyncio.new_event_loop()
        return self._loop.run_until_complete(ride_out(again, what="the jobs' writes", budget=self._budget, log=log))

    def _write(self, touches: list[Touch], outcomes: list[Outcome]) -> tuple[Touched, set[uuid.UUID]]:
        with session_scope(self._url) as session:  # progress first: a job's last report lands too
            if not outcomes:
                relax_commit(session)
            touched = touch_many(session, touches, utcnow())
            recorded = finish_many(session, outcomes)
        self.statements += bool(touches) + bool(outcomes)
        return touched, recorded

    def _settle(self, touches: dict[uuid.UUID, Touch], touched: Touched,
                outcomes: list[tuple[Outcome, Future[bool]]], recorded: set[uuid.UUID]) -> None:
        gone = [t for t in touches.values() if t.id not in touched.owned]
        with self._cv:
            for t in gone:
                if self._active.pop(t.id, None) is not None:
                    self.lost.add(t.id)
            asked = [self._tokens.setdefault(job_id, Cancellation()) for job_id in touched.cancel_requested
                     if job_id in self._active]
            for outcome, _ in outcomes:
                self._active.pop(outcome.id, None)
                self._tokens.pop(outcome.id, None)
            for t in gone:
                self._tokens.pop(t.id, None)
        for token in asked:
            token.request()
        for t in gone:
            log.warning("job %s attempt %d was taken over by orphan recovery; its result will not be "
                        "recorded", t.id, t.attempt)
        for outcome, future in outcomes:
            if not future.done():
                future.set_result(outcome.id in recorded)
