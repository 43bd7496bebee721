"""``quota_reset``: open this month's quota ledger with the configured limit (seed 000)."""

from __future__ import annotations

from prefect import flow

from core.db import quota, session_scope
from core.db.history import RunRecord
from core.db.job_configs import QUOTA_RESET
from core.db.models import RunStatus
from core.db.types import utcnow
from core.jobs import JobResult
from core.settings import get_settings
from flows._run import current_flow_run_id, finish_run
from flows.profile_fetcher import PROVIDER
from tasks._common import db_task, db_url
from tasks.job_configs import load_job_config


@db_task
async def start_quota_period(provider: str, monthly_limit: int, reset_usage: bool) -> quota.QuotaState:
    """Create (or re-limit) the current month's ledger row."""
    with session_scope(db_url()) as session:
        return quota.start_period(session, provider=provider, period=quota.period_of(utcnow()),
                                  monthly_limit=monthly_limit, reset_usage=reset_usage)


@flow(name="quota-reset")
async def quota_reset(monthly_limit: int | None = None, reset_usage: bool = False) -> JobResult:
    """Start the month's ledger with ``monthly_limit`` (default ``rapidapi.monthlyQuota``).

    Months are separate rows, so a new month starts at zero by itself; ``reset_usage=True``
    also zeroes the current month's count (e.g. after a plan upgrade).
    """
    settings = get_settings()
    started = utcnow()
    limit = settings.rapidapi.monthly_quota if monthly_limit is None else monthly_limit
    if limit < 0:
        raise ValueError(f"monthly_limit must be >= 0, got {limit}")
    config = await load_job_config(QUOTA_RESET)
    state = await start_quota_period(PROVIDER, limit, reset_usage)
    record = RunRecord(
        job_name=QUOTA_RESET, job_type=config.job_type, status=RunStatus.SUCCESS.value,
        started_at=started, finished_at=utcnow(), flow_run_id=current_flow_run_id(),
        quota_remaining=state.remaining, config_id=config.id,
        metrics={"provider": PROVIDER, "period": state.period, "monthly_limit": state.monthly_limit,
                 "calls_used": state.calls_used, "reset_usage": reset_usage},
    )
    return await finish_run(record, notify="failure")
