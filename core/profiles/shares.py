"""The shares of a profile-fetcher run, in the database (``fetch_shares``): kernel, no Prefect.

A run with ``parallel_runs`` = N fetches itself and hands N - 1 *shares* to Prefect task
workers (``tasks.profiles.share``). A share claims entries under its own id, exactly like a
run, and beats its row while it fetches. The row is the one place both sides agree on:
- a share starts only if its row is still SCHEDULED (``start``), so a run that finished the
  work itself cancels the shares no worker took (``cancel_unstarted``) and none starts late;
- a share that stopped beating (its worker died) is RELEASED by its run (``take_dead``), which
  releases its claims exactly (``tasks.profiles.release``) and fetches what it held; a share
  that beats again after that finds its row RELEASED and stops (``beat`` returns False);
- a share's tally is written with its last state (``finish``), so the run's history row
  counts every share's work without a result store.
Every transition is one conditional UPDATE: two processes never both win one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db.types import utcnow
from core.profiles.models import FetchShare, ShareState
from core.profiles.tally import RunTally

# A live share beats this often; one silent for ``rapidapi.shareDeadAfterSeconds`` (default 30)
# is taken for dead. Generous: a beat is a tiny statement on the share's event loop, late only
# on a machine that is stalled.
BEAT_SECONDS = 2.0


@dataclass(frozen=True)
class ShareRow:
    id: str
    state: str
    task_run_id: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tally: dict[str, Any] | None


def tally_to_json(tally: RunTally) -> dict[str, Any]:
    return asdict(tally)


def tally_from_json(data: dict[str, Any]) -> RunTally:
    return RunTally(**data)


def open_shares(session: Session, run_id: str, share_ids: Sequence[str]) -> None:
    """The rows of a run's shares, SCHEDULED, before they are handed to Prefect."""
    session.add_all(FetchShare(id=s, run_id=run_id, state=ShareState.SCHEDULED.value) for s in share_ids)


def set_task_run(session: Session, share_id: str, task_run_id: str) -> None:
    session.execute(update(FetchShare).where(FetchShare.id == share_id).values(task_run_id=task_run_id))


def start(session: Session, share_id: str, worker: str) -> bool:
    """A task worker takes the share: True if it was still SCHEDULED (now RUNNING)."""
    now = utcnow()
    moved = session.execute(
        update(FetchShare).where(FetchShare.id == share_id, FetchShare.state == ShareState.SCHEDULED.value)
        .values(state=ShareState.RUNNING.value, worker=worker[:200], started_at=now, beat_at=now))
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def beat(session: Session, share_id: str) -> bool:
    """The share is alive: False when its run has released it meanwhile (it must stop)."""
    moved = session.execute(
        update(FetchShare).where(FetchShare.id == share_id, FetchShare.state == ShareState.RUNNING.value)
        .values(beat_at=utcnow()))
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, share_id: str, tally: RunTally) -> bool:
    """The share ends with ``tally``: False when its run had released it (its tally is not counted:
    the release counted what it had finished)."""
    moved = session.execute(
        update(FetchShare).where(FetchShare.id == share_id, FetchShare.state == ShareState.RUNNING.value)
        .values(state=ShareState.DONE.value, finished_at=utcnow(), beat_at=utcnow(), tally=tally_to_json(tally)))
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def cancel_unstarted(session: Session, run_id: str) -> list[str]:
    """The run's shares no worker took yet: CANCELLED (none of them starts later); their ids."""
    rows = session.execute(
        update(FetchShare).where(FetchShare.run_id == run_id, FetchShare.state == ShareState.SCHEDULED.value)
        .values(state=ShareState.CANCELLED.value, finished_at=utcnow()).returning(FetchShare.id))
    return sorted(rows.scalars())


def take_dead(session: Session, *, run_id: str | None = None, now: datetime | None = None,
              dead_after: timedelta) -> list[ShareRow]:
    """RUNNING shares silent for ``dead_after`` (of ``run_id``, or of any run): RELEASED, so that
    exactly one caller releases each one's claims; the rows taken."""
    cutoff = (now or utcnow()) - dead_after
    stmt = (update(FetchShare).where(FetchShare.state == ShareState.RUNNING.value, FetchShare.beat_at < cutoff)
            .values(state=ShareState.RELEASED.value, finished_at=utcnow()))
    if run_id is not None:
        stmt = stmt.where(FetchShare.run_id == run_id)
    taken = session.execute(stmt.returning(FetchShare.id)).scalars().all()
    return shares_of(session, ids=list(taken))


def shares_of(session: Session, run_id: str | None = None, *, ids: Sequence[str] | None = None) -> list[ShareRow]:
    stmt = select(FetchShare).order_by(FetchShare.created_at, FetchShare.id)
    if run_id is not None:
        stmt = stmt.where(FetchShare.run_id == run_id)
    if ids is not None:
        if not ids:
            return []
        stmt = stmt.where(FetchShare.id.in_(list(ids)))
    return [ShareRow(r.id, r.state, r.task_run_id, r.worker, r.created_at, r.started_at, r.finished_at, r.tally)
            for r in session.execute(stmt).scalars()]


def running(session: Session, run_id: str) -> int:
    """How many of the run's shares are SCHEDULED or RUNNING."""
    return int(session.execute(select(func.count()).select_from(FetchShare).where(
        FetchShare.run_id == run_id,
        FetchShare.state.in_([ShareState.SCHEDULED.value, ShareState.RUNNING.value]))).scalar_one())
