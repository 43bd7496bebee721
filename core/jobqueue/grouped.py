"""Grouped writes to Running jobs: many jobs, one statement, each row fenced by its attempt.

A worker never writes one job at a time: heartbeats of all its Running jobs, buffered
progress, the Prefect task run ids and the outcomes of finished jobs go out together
(``core.jobqueue.writer``). On PostgreSQL each kind is ONE ``UPDATE jobs ... FROM
unnest(arrays)`` statement; SQLite (single writer, local file) runs the same fenced
UPDATE per row inside the one transaction. Only rows still ``Running`` under the given
attempt change, so an attempt that orphan recovery took away never writes again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from core.db.upsert import rowcount
from core.jobqueue.models import Job, JobStatus

RUNNING = JobStatus.RUNNING.value


@dataclass(frozen=True)
class Touch:
    """Proof of life for one attempt, with what changed since the last write (if anything)."""

    id: uuid.UUID
    attempt: int
    message: str | None = None
    percent: int | None = None
    task_run_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: ``error`` None = Completed; ``cancelled`` = Cancelled (with
    ``error`` saying how it stopped); ``not_before`` = Pending again, claimed from then on (the
    handler met a provider's "later", ``error`` says which)."""

    id: uuid.UUID
    attempt: int
    finished_at: datetime
    error: str | None = None
    cancelled: bool = False
    not_before: datetime | None = None

    @property
    def status(self) -> str:
        if self.cancelled:
            return JobStatus.CANCELLED.value
        if self.not_before is not None:
            return JobStatus.PENDING.value
        return JobStatus.COMPLETED.value if self.error is None else JobStatus.FAILED.value


@dataclass(frozen=True)
class Touched:
    """What one grouped heartbeat learnt: the attempts still owned, and those of them whose
    cancellation was requested."""

    owned: set[uuid.UUID]
    cancel_requested: set[uuid.UUID]


def _pct(percent: int | None) -> int | None:
    return None if percent is None else max(0, min(100, int(percent)))


_PG_TOUCH = text("""
UPDATE jobs AS j SET heartbeat_at = :now,
  progress_message = COALESCE(v.msg, j.progress_message),
  progress_percent = COALESCE(v.pct, j.progress_percent),
  task_run_id = COALESCE(v.trid, j.task_run_id)
FROM unnest(CAST(:ids AS uuid[]), CAST(:atts AS int[]), CAST(:msgs AS text[]), CAST(:pcts AS int[]),
            CAST(:trids AS text[])) AS v(id, att, msg, pct, trid)
WHERE j.id = v.id AND j.attempts = v.att AND j.status = 'Running'
RETURNING j.id, j.cancel_requested_at IS NOT NULL""")

# A deferred outcome (``nb`` set) makes the job Pending again: not completed, claimed by nobody.
_PG_FINISH = text("""
UPDATE jobs AS j SET status = v.status, error_message = v.err, heartbeat_at = NULL, not_before = v.nb,
  completed_at = CASE WHEN v.nb IS NULL THEN v.at END,
  claimed_by = CASE WHEN v.nb IS NULL THEN j.claimed_by END,
  flow_run_id = CASE WHEN v.nb IS NULL THEN j.flow_run_id END,
  task_run_id = CASE WHEN v.nb IS NULL THEN j.task_run_id END
FROM unnest(CAST(:ids AS uuid[]), CAST(:atts AS int[]), CAST(:errs AS text[]), CAST(:ats AS timestamptz[]),
            CAST(:statuses AS text[]), CAST(:nbs AS timestamptz[]))
  AS v(id, att, err, at, status, nb)
WHERE j.id = v.id AND j.attempts = v.att AND j.status = 'Running'
RETURNING j.id""")


def _fenced(job_id: uuid.UUID, attempt: int) -> Any:
    return update(Job).where(Job.id == job_id, Job.attempts == attempt, Job.status == RUNNING) \
        .execution_options(synchronize_session=False)


def relax_commit(session: Session) -> None:
    """Heartbeats, progress and task run ids need no WAL flush at commit (PostgreSQL): losing
    the last few to a database crash costs nothing that the next write does not restore."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('synchronous_commit', 'off', true)"))


def touch_many(session: Session, touches: Sequence[Touch], now: datetime) -> Touched:
    """Heartbeat (and progress, task run id) for every attempt in ``touches``, in the same
    statement reading which of them have a cancel request. A job missing from ``owned``
    was taken over by orphan recovery (or cancelled while it waited)."""
    if not touches:
        return Touched(set(), set())
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_PG_TOUCH, {
            "now": now, "ids": [t.id for t in touches], "atts": [t.attempt for t in touches],
            "msgs": [None if t.message is None else t.message[:2000] for t in touches],
            "pcts": [_pct(t.percent) for t in touches], "trids": [t.task_run_id for t in touches]}).all()
        return Touched({r[0] for r in rows}, {r[0] for r in rows if r[1]})
    owned: set[uuid.UUID] = set()
    for t in touches:
        values: dict[str, Any] = {"heartbeat_at": now}
        if t.message is not None:
            values["progress_message"] = t.message[:2000]
        if t.percent is not None:
            values["progress_percent"] = _pct(t.percent)
        if t.task_run_id is not None:
            values["task_run_id"] = t.task_run_id
        if rowcount(session.execute(_fenced(t.id, t.attempt).values(**values))):
            owned.add(t.id)
    asked = set(session.execute(select(Job.id).where(Job.id.in_(owned), Job.cancel_requested_at.is_not(None)))
                .scalars()) if owned else set()
    return Touched(owned, asked)


def finish_many(session: Session, outcomes: Sequence[Outcome]) -> set[uuid.UUID]:
    """Running -> Completed / Failed / Cancelled (or Pending again, deferred) for every attempt
    in ``outcomes``; returns the ids whose outcome was recorded (the others had been taken
    over: a job never completes twice)."""
    if not outcomes:
        return set()
    errors = [None if o.error is None else o.error[:4000] for o in outcomes]
    if session.get_bind().dialect.name == "postgresql":
        return set(session.execute(_PG_FINISH, {
            "ids": [o.id for o in outcomes], "atts": [o.attempt for o in outcomes], "errs": errors,
            "ats": [o.finished_at for o in outcomes], "statuses": [o.status for o in outcomes],
            "nbs": [o.not_before for o in outcomes]}).scalars())
    recorded: set[uuid.UUID] = set()
    for o, error in zip(outcomes, errors, strict=True):
        values: dict[str, Any] = {"status": o.status, "error_message": error, "heartbeat_at": None,
                                  "completed_at": o.finished_at, "not_before": o.not_before}
        if o.not_before is not None:
            values |= {"completed_at": None, "claimed_by": None, "flow_run_id": None, "task_run_id": None}
        if rowcount(session.execute(_fenced(o.id, o.attempt).values(**values))):
            recorded.add(o.id)
    return recorded
