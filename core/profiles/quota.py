"""The quota ledger: atomic reservations that never grant more than the period's limit.

One row per provider and period; a period runs from one fire of the quota reset schedule
(``cron.quotaResetSchedule``) to the next, so a plan renewing on the 15th is one row from
the 15th to the 14th."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.cron import next_run, previous_run
from core.db.types import utcnow
from core.db.upsert import insert_missing, rowcount, upsert_rows
from core.profiles.job_configs import reset_schedule
from core.profiles.models import ApiQuota
from core.profiles.settings import CronSettings

PROVIDER = "rapidapi"  # the ledger rows of the RapidAPI plan
_MAX_CAS_ATTEMPTS = 50


# A period is named by the quota reset fire time that opened it, in UTC: "2026-01-15T00:00Z".
# Readable, and it sorts in time order (``ORDER BY period DESC``).
PERIOD_FORMAT = "%Y-%m-%dT%H:%MZ"


def period_of(moment: datetime, *, schedule: str, timezone: str) -> str:
    """The ledger period ``moment`` falls in: the last fire time of the quota reset cron
    ``schedule`` (in ``timezone``) at or before ``moment``, as ``YYYY-MM-DDTHH:MMZ`` (UTC).

    With ``"0 0 15 * *"``, Jan 20 and Feb 10 are both in ``2026-01-15T00:00Z``; Feb 15
    00:00 starts ``2026-02-15T00:00Z``."""
    return previous_run(schedule, timezone, moment).astimezone(UTC).strftime(PERIOD_FORMAT)


def period_window(moment: datetime, *, schedule: str, timezone: str) -> tuple[datetime, datetime]:
    """(start, end) in UTC of the period ``moment`` falls in: the reset fire times around it."""
    start = previous_run(schedule, timezone, moment)
    return start, next_run(schedule, timezone, start)


def current_period(session: Session, cron: CronSettings, now: datetime | None = None) -> str:
    """The period of ``now`` under the ``quota_reset`` job's schedule and timezone (its row in
    ``cron_job_configs``, inserted from ``cron.quotaResetSchedule``/``cron.timezone``)."""
    return period_under(reset_schedule(session, cron), now)


def period_under(reset: tuple[str, str], now: datetime | None = None) -> str:
    """The period of ``now`` under the quota reset's (cron, timezone), read once by the caller."""
    return period_of(now or utcnow(), schedule=reset[0], timezone=reset[1])


def current_window(session: Session, cron: CronSettings, now: datetime | None = None) -> tuple[datetime, datetime]:
    """:func:`period_window` of ``now`` under the quota reset's schedule (see :func:`current_period`)."""
    schedule, timezone = reset_schedule(session, cron)
    return period_window(now or utcnow(), schedule=schedule, timezone=timezone)


@dataclass(frozen=True)
class QuotaState:
    provider: str
    period: str
    monthly_limit: int
    calls_used: int
    reserved: int

    @property
    def remaining(self) -> int:
        """Calls still available to new reservations."""
        return max(0, self.monthly_limit - self.calls_used - self.reserved)


def _new_row(provider: str, period: str, monthly_limit: int) -> dict[str, object]:
    now = utcnow()
    return {"provider": provider, "period": period, "monthly_limit": monthly_limit,
            "calls_used": 0, "reserved": 0, "created_at": now, "updated_at": now}


def ensure_period(session: Session, *, provider: str, period: str, monthly_limit: int) -> None:
    """Create the period's ledger row if missing (keeps an existing row as it is)."""
    insert_missing(
        session, ApiQuota.__table__, [_new_row(provider, period, monthly_limit)],
        conflict_columns=["provider", "period"],
    )


def get_state(session: Session, *, provider: str, period: str) -> QuotaState | None:
    row = session.execute(
        select(ApiQuota).where(ApiQuota.provider == provider, ApiQuota.period == period)
    ).scalar_one_or_none()
    if row is None:
        return None
    return QuotaState(provider, period, row.monthly_limit, row.calls_used, row.reserved)


def reserve(
    session: Session,
    *,
    provider: str,
    period: str,
    requested: int,
    monthly_limit: int,
    enforce_limit: bool = True,
) -> tuple[int, QuotaState]:
    """Reserve up to ``requested`` calls; returns (granted, state after).

    A compare-and-swap on (calls_used, reserved): if another run changed the row between
    our read and our write, the UPDATE matches nothing and we read again. Correct on
    PostgreSQL (READ COMMITTED re-checks the WHERE after the row lock) and on SQLite
    (writers are serialised). ``enforce_limit=False`` grants everything asked for
    (``respect_quota=false``) but still records it, so the ledger shows the overrun.
    """
    for _ in range(_MAX_CAS_ATTEMPTS):
        state = get_state(session, provider=provider, period=period)
        if state is None:  # the period's first reservation
            ensure_period(session, provider=provider, period=period, monthly_limit=monthly_limit)
            state = get_state(session, provider=provider, period=period)
            assert state is not None
        granted = min(requested, state.remaining) if enforce_limit else requested
        if granted <= 0:
            return 0, state
        result = session.execute(
            update(ApiQuota)
            .where(
                ApiQuota.provider == provider,
                ApiQuota.period == period,
                ApiQuota.calls_used == state.calls_used,
                ApiQuota.reserved == state.reserved,
            )
            .values(reserved=ApiQuota.reserved + granted, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if rowcount(result) == 1:
            after = QuotaState(
                provider, period, state.monthly_limit, state.calls_used, state.reserved + granted
            )
            return granted, after
        session.expire_all()
    raise RuntimeError(f"quota ledger {provider}/{period}: too much contention")


def settle(
    session: Session, *, provider: str, period: str, reserved: int, used: int
) -> QuotaState:
    """Turn a reservation into ``used`` calls and release the rest (or over-use, if any)."""
    row = session.execute(
        update(ApiQuota)
        .where(ApiQuota.provider == provider, ApiQuota.period == period)
        .values(
            calls_used=ApiQuota.calls_used + used,
            reserved=ApiQuota.reserved - reserved,
            updated_at=utcnow(),
        )
        .returning(ApiQuota.monthly_limit, ApiQuota.calls_used, ApiQuota.reserved)
        .execution_options(synchronize_session=False)
    ).one()
    session.expire_all()
    return QuotaState(provider, period, row.monthly_limit, row.calls_used, row.reserved)


def mark_exhausted(session: Session, *, provider: str, period: str) -> None:
    """The provider says the plan is spent: make the ledger agree, whatever it counted."""
    session.execute(
        update(ApiQuota)
        .where(ApiQuota.provider == provider, ApiQuota.period == period)
        .values(calls_used=ApiQuota.monthly_limit, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def start_period(
    session: Session, *, provider: str, period: str, monthly_limit: int, reset_usage: bool = False
) -> QuotaState:
    """Open the period's ledger with ``monthly_limit``; optionally zero what it has used."""
    row = _new_row(provider, period, monthly_limit)
    update_columns = ["monthly_limit", "updated_at"] + (["calls_used"] if reset_usage else [])
    upsert_rows(session, ApiQuota.__table__, [row], conflict_columns=["provider", "period"],
                update_columns=update_columns)
    session.expire_all()
    state = get_state(session, provider=provider, period=period)
    assert state is not None
    return state


def reserved_period(session: Session, *, provider: str) -> str | None:
    """The latest period that holds a reservation (where a crashed run's grant sits)."""
    return session.execute(
        select(ApiQuota.period).where(ApiQuota.provider == provider, ApiQuota.reserved > 0)
        .order_by(ApiQuota.period.desc()).limit(1)).scalar()

