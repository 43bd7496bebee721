"""Profile entries: enqueue, claim (safe under overlapping runs), finish, re-queue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from core.db.claim import claim_oldest
from core.db.types import utcnow
from core.db.upsert import insert_missing, rowcount
from core.profiles.cleaning import validate_urn
from core.profiles.models import EntryStatus, ProfileEntry


@dataclass(frozen=True)
class ClaimedEntry:
    """A plain snapshot of a claimed entry, safe to pass between tasks."""

    id: int
    urn: str
    fetch_count: int


@dataclass(frozen=True)
class EntryOutcome:
    """What happened to one entry in a batch; ``error`` is None on success."""

    id: int
    urn: str
    error: str | None = None


def add_pending(session: Session, urns: Iterable[str]) -> int:
    """Enqueue URNs as PENDING (validated; existing ones are left alone). Returns rows added."""
    now = utcnow()
    unique = dict.fromkeys(validate_urn(u) for u in urns)
    rows = [
        {"urn": u, "status": EntryStatus.PENDING.value, "fetch_count": 0,
         "created_at": now, "updated_at": now}
        for u in unique
    ]
    return insert_missing(session, ProfileEntry.__table__, rows, conflict_columns=["urn"])


def claim_pending(session: Session, *, limit: int, claimed_by: str) -> list[ClaimedEntry]:
    """Move up to ``limit`` oldest PENDING entries to FETCHING in one statement.

    Two overlapping runs claim disjoint sets (see :func:`core.db.claim.claim_oldest`).
    """
    now = utcnow()
    rows = claim_oldest(
        session, ProfileEntry, where=[ProfileEntry.status == EntryStatus.PENDING.value,
                                      or_(ProfileEntry.not_before.is_(None), ProfileEntry.not_before <= now)],
        limit=limit,
        values={"status": EntryStatus.FETCHING.value, "claimed_by": claimed_by, "requested_at": None,
                "not_before": None, "updated_at": now},
        returning=[ProfileEntry.id, ProfileEntry.urn, ProfileEntry.fetch_count],
    )
    return [ClaimedEntry(r.id, r.urn, r.fetch_count) for r in rows]


def release_stale(session: Session, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Return FETCHING entries untouched for ``older_than`` (a crashed run) to PENDING."""
    cutoff = (now or utcnow()) - older_than
    result = session.execute(
        update(ProfileEntry)
        .where(ProfileEntry.status == EntryStatus.FETCHING.value, ProfileEntry.updated_at < cutoff)
        .values(status=EntryStatus.PENDING.value, claimed_by=None, updated_at=utcnow(),
                error_message="re-queued: the run that claimed it did not finish")
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def release_claimed(session: Session, ids: Sequence[int], *, reason: str) -> int:
    """Give claimed entries back to PENDING untouched (the run stopped before fetching them)."""
    if not ids:
        return 0
    result = session.execute(
        update(ProfileEntry)
        .where(ProfileEntry.id.in_(ids), ProfileEntry.status == EntryStatus.FETCHING.value)
        .values(status=EntryStatus.PENDING.value, claimed_by=None, error_message=reason,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def mark_completed(session: Session, fetched: Sequence[tuple[int, datetime]]) -> None:
    """FETCHING -> COMPLETED for (entry id, fetched at) pairs: bump fetch_count, stamp
    last_fetched_at. One executemany, not a statement per entry."""
    if not fetched:
        return
    table: Any = ProfileEntry.__table__
    session.execute(
        update(table)
        .where(table.c.id == bindparam("entry_id"))
        .values(status=EntryStatus.COMPLETED.value, error_message=None,  # claimed_by: who finished it
                fetch_count=table.c.fetch_count + 1, last_fetched_at=bindparam("fetched_at"),
                updated_at=bindparam("now")),
        [{"entry_id": i, "fetched_at": at, "now": utcnow()} for i, at in fetched],
    )


def mark_failed(session: Session, failures: Sequence[EntryOutcome]) -> None:
    """FETCHING -> FAILED with each entry's own error message."""
    now = utcnow()
    for outcome in failures:
        session.execute(
            update(ProfileEntry)
            .where(ProfileEntry.id == outcome.id)
            .values(status=EntryStatus.FAILED.value, error_message=(outcome.error or "")[:2000],
                    updated_at=now)  # claimed_by stays: the run that finished it
            .execution_options(synchronize_session=False)
        )


def defer(session: Session, deferred: Sequence[tuple[EntryOutcome, datetime]]) -> None:
    """FETCHING -> PENDING not before the given time, with the reason: the provider said "later"
    (a 429 or a 5xx after the retries), so a later run takes it without a person."""
    now = utcnow()
    for outcome, until in deferred:
        session.execute(
            update(ProfileEntry)
            .where(ProfileEntry.id == outcome.id, ProfileEntry.status == EntryStatus.FETCHING.value)
            .values(status=EntryStatus.PENDING.value, not_before=until, claimed_by=None,
                    error_message=(outcome.error or "")[:2000], updated_at=now)
            .execution_options(synchronize_session=False)
        )


def finished(session: Session, ids: Sequence[int]) -> list[EntryOutcome]:
    """Which of ``ids`` ended COMPLETED (``error`` None) or FAILED (with its message)."""
    if not ids:
        return []
    rows = session.execute(
        select(ProfileEntry.id, ProfileEntry.urn, ProfileEntry.status, ProfileEntry.error_message)
        .where(ProfileEntry.id.in_(list(ids)),
               ProfileEntry.status.in_([EntryStatus.COMPLETED.value, EntryStatus.FAILED.value]))
        .order_by(ProfileEntry.id)
    ).all()
    return [EntryOutcome(r.id, r.urn, None if r.status == EntryStatus.COMPLETED.value else (r.error_message or ""))
            for r in rows]


def requeue_failed(session: Session, urns: Sequence[str] | None = None) -> int:
    """FAILED -> PENDING, for all failed entries or just ``urns``. Returns rows re-queued."""
    stmt = update(ProfileEntry).where(ProfileEntry.status == EntryStatus.FAILED.value)
    if urns is not None:
        stmt = stmt.where(ProfileEntry.urn.in_(list(urns)))
    result = session.execute(
        stmt.values(status=EntryStatus.PENDING.value, error_message=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(ProfileEntry.status, func.count()).group_by(ProfileEntry.status)
    ).all()
    return {status: count for status, count in rows}


def claimed_by_run(session: Session, run_id: str) -> list[ClaimedEntry]:
    """The entries run ``run_id`` still holds FETCHING (what it was working on when it stopped)."""
    rows = session.execute(
        select(ProfileEntry.id, ProfileEntry.urn, ProfileEntry.fetch_count)
        .where(ProfileEntry.status == EntryStatus.FETCHING.value, ProfileEntry.claimed_by == run_id)
        .order_by(ProfileEntry.id)).all()
    return [ClaimedEntry(r.id, r.urn, r.fetch_count) for r in rows]


def claimants(session: Session) -> list[str]:
    """Every run that holds FETCHING entries now."""
    return sorted(c for c in session.execute(
        select(ProfileEntry.claimed_by).where(ProfileEntry.status == EntryStatus.FETCHING.value,
                                              ProfileEntry.claimed_by.is_not(None)).distinct()).scalars() if c)


def still_fetching(session: Session, ids: Sequence[int]) -> list[ClaimedEntry]:
    """Which of ``ids`` are still FETCHING."""
    if not ids:
        return []
    rows = session.execute(
        select(ProfileEntry.id, ProfileEntry.urn, ProfileEntry.fetch_count)
        .where(ProfileEntry.id.in_(list(ids)), ProfileEntry.status == EntryStatus.FETCHING.value)
        .order_by(ProfileEntry.id)).all()
    return [ClaimedEntry(r.id, r.urn, r.fetch_count) for r in rows]


def requested_among(session: Session, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` had their request marked sent since they were claimed."""
    if not ids:
        return set()
    return set(session.execute(select(ProfileEntry.id).where(
        ProfileEntry.id.in_(list(ids)), ProfileEntry.requested_at.is_not(None))).scalars())


STORAGE_UNAVAILABLE = "storage unavailable"  # the error of an entry our own storage failed


def waiting_after_storage_failure(session: Session, limit: int = 500) -> list[tuple[str, datetime]]:
    """(URN, when it went back to PENDING) of entries our storage failed while their answer
    was being kept: the objects written before it failed may still be there (their removal
    failed too)."""
    return [(r.urn, r.updated_at) for r in session.execute(select(ProfileEntry.urn, ProfileEntry.updated_at).where(
        ProfileEntry.status == EntryStatus.PENDING.value,
        ProfileEntry.error_message.contains(STORAGE_UNAVAILABLE)).order_by(ProfileEntry.id).limit(limit))]


def stale_claimants(session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[str]:
    """Runs holding FETCHING entries untouched for ``older_than``: runs that stopped without a
    word (the timeout sweep releases them like a crashed run)."""
    cutoff = (now or utcnow()) - older_than
    return sorted(c for c in session.execute(
        select(ProfileEntry.claimed_by).where(ProfileEntry.status == EntryStatus.FETCHING.value,
                                              ProfileEntry.updated_at < cutoff,
                                              ProfileEntry.claimed_by.is_not(None)).distinct()).scalars() if c)


def finished_by_run(session: Session, run_id: str) -> dict[str, int]:
    """How many entries run ``run_id`` completed and failed (``claimed_by`` names the finisher)."""
    rows = session.execute(
        select(ProfileEntry.status, func.count()).where(
            ProfileEntry.claimed_by == run_id,
            ProfileEntry.status.in_([EntryStatus.COMPLETED.value, EntryStatus.FAILED.value]))
        .group_by(ProfileEntry.status)).all()
    return {str(status).lower(): int(n) for status, n in rows}


@dataclass(frozen=True)
class RunAccount:
    """What one run finished, as its entries record it durably: the batch's settlement
    transaction (and a release's adoption) leaves ``claimed_by`` naming the run on every entry
    it COMPLETED or FAILED, ``requested_at`` on those whose request was sent, and bumps
    ``fetch_count`` on each completion (1: the entry's first fetch, its profile row created)."""

    completed: int = 0
    failed: int = 0
    created: int = 0  # completed entries fetched for the first time (their profile row is new)
    requested: int = 0  # finished entries whose request was sent: one API call each (retries unknown)

    @property
    def updated(self) -> int:
        return self.completed - self.created


def account_of_run(session: Session, run_id: str) -> RunAccount:
    """:class:`RunAccount` of run ``run_id`` (a dead run's: what it completed before it died)."""
    completed = ProfileEntry.status == EntryStatus.COMPLETED.value

    def count(*where: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*where), 1), else_=0)), 0)

    row = session.execute(select(
        count(completed), count(ProfileEntry.status == EntryStatus.FAILED.value),
        count(completed, ProfileEntry.fetch_count == 1), count(ProfileEntry.requested_at.is_not(None)),
    ).where(ProfileEntry.claimed_by == run_id,
            ProfileEntry.status.in_([EntryStatus.COMPLETED.value, EntryStatus.FAILED.value]))).one()
    return RunAccount(*(int(n) for n in row))


def mark_requested(session: Session | Connection, ids: Sequence[int]) -> None:
    """The claiming run is about to send these entries' requests (committed before they are sent)."""
    session.execute(update(ProfileEntry).where(ProfileEntry.id.in_(list(ids)))
                    .values(requested_at=utcnow()).execution_options(synchronize_session=False))


def mark_requested_sql() -> str:
    """:func:`mark_requested` as one PostgreSQL statement for a psycopg connection, with
    ``%(at)s`` and ``%(ids)s`` (a list): the fetcher sends it from the event loop."""
    return f"UPDATE {ProfileEntry.__tablename__} SET requested_at = %(at)s WHERE id = ANY(%(ids)s)"


def requested_by_run(session: Session, run_id: str) -> set[int]:
    """Ids of the FETCHING entries of ``run_id`` whose request was sent."""
    return set(session.execute(select(ProfileEntry.id).where(
        ProfileEntry.status == EntryStatus.FETCHING.value, ProfileEntry.claimed_by == run_id,
        ProfileEntry.requested_at.is_not(None))).scalars())

