"""Profile-fetcher flows (seed 000): ``profile_fetcher``, ``quota_reset``, and queue management
(``add_profile_entries``, ``requeue_failed``)."""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger

from core.db.types import utcnow
from core.profiles.job_configs import PROFILE_FETCHER, QUOTA_RESET, ProfileJobConfig
from core.profiles.quota import PROVIDER
from core.profiles.tally import RunTally
from core.runs.history import RunRecord
from core.runs.models import RunStatus
from core.runs.result import JobMetrics, JobResult
from core.settings import Settings, get_settings
from flows.spec import DefaultSchedule, JobSpec
from tasks.profiles import (
    add_pending_entries,
    fetch_stages,
    load_job_config,
    recover_before_run,
    requeue_failed_entries,
    settle_shares,
    start_quota_period,
    start_shares,
)
from tasks.progress import start_progress
from tasks.runs import current_flow_run_id, final_state, finish_run, run_job


@flow(name="profile-fetcher")
async def profile_fetcher(
    batch_size: int | None = None,
    respect_quota: bool | None = None,
    max_batches: int | None = None,
    parallel_runs: int = 1,
) -> JobResult | None:
    """Fetch pending profiles batch by batch until none are left or the quota runs out.

    ``batch_size`` and ``respect_quota`` default to the job's ``cron_job_configs`` row;
    ``max_batches`` bounds one run (None: until done). ``parallel_runs`` > 1 hands that many
    - 1 shares of the run to Prefect task workers (``python -m deployments.worker.task_worker``;
    ``tasks.profiles.share``): the run and its shares claim disjoint batches from one queue
    and share the quota ledger and the RapidAPI budget, so each worker adds throughput until
    the provider's limit binds; a share whose worker dies is released and finished by the run.
    Returns the run's JobResult, or None when the job is disabled in ``cron_job_configs``.
    """
    logger = get_run_logger()
    settings = get_settings()
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not 1 <= parallel_runs <= 16:
        raise ValueError(f"parallel_runs must be within 1..16, got {parallel_runs}")
    params = {"batch_size": batch_size, "respect_quota": respect_quota, "max_batches": max_batches}
    config = await load_job_config(PROFILE_FETCHER)
    if not config.enabled:
        logger.info("profile_fetcher is disabled in cron_job_configs; nothing to do")
        return None
    run_id = current_flow_run_id() or f"local-{uuid.uuid4()}"
    size = batch_size or config.batch_size
    respect = config.respect_quota if respect_quota is None else respect_quota
    tally = RunTally()
    recovered = 0
    fanned: dict[str, object] = {}

    async def body(_: JobMetrics) -> None:
        nonlocal recovered, fanned
        released = await recover_before_run(run_id, settings.cron.fetching_timeout_minutes)
        if released.dead_runs:  # runs Prefect shows ended: released at once
            logger.warning("released the claims of %d ended runs: %s", len(released.dead_runs), released.dead_runs)
        recovered = released.stale
        if recovered:
            logger.warning("re-queued %d entries orphaned by an earlier run", recovered)
        progress_id = await start_progress("profile_fetcher")
        # Inside the run: a failure to hand out the shares is this run's FAILED row and e-mail.
        # A bounded run (max_batches) is not shared: its bound is the run's own.
        share_ids = await start_shares(run_id, parallel_runs - 1 if max_batches is None else 0, size, respect)
        await fetch_stages(tally, run_id, size, respect, max_batches, progress_id)
        if share_ids:
            fanned = await settle_shares(run_id, tally, lambda: fetch_stages(tally, run_id, size, respect, None,
                                                                             progress_id))
        if tally.stopped_by_quota and not any("provider reports" in n for n in tally.notes):
            tally.notes.append(f"monthly quota exhausted after {tally.processed} entries")

    # Whatever ended the run, it gets its history row and its e-mail (seed 000, step 4); the
    # tally decides the status (QUOTA_EXCEEDED, PARTIAL when the quota stopped it mid-way).
    def outcome(record: RunRecord, error: BaseException | None) -> RunRecord:
        return tally.to_record(record, error, config_id=config.id, metrics={
            "params": params, "batches": tally.batches, "batch_size": size, "respect_quota": respect,
            "recovered_orphans": recovered, "parallel_runs": parallel_runs, "shares": fanned, "deferred": tally.deferred,
            "errors": tally.errors})

    return final_state(await run_job(PROFILE_FETCHER, config.job_type, body, params=params, notify=FETCHER.notify,
                         outcome=outcome))


@flow(name="quota-reset")
async def quota_reset(monthly_limit: int | None = None, reset_usage: bool = False) -> JobResult:
    """Open the current quota period's ledger with ``monthly_limit`` (default ``rapidapi.monthlyQuota``).

    A period runs from one fire of ``cron.quotaResetSchedule`` (in ``cron.timezone``) to the
    next, and periods are separate rows, so each reset starts at zero by itself, even if
    this flow did not run; ``reset_usage=True`` also zeroes the current period's count
    (e.g. after a plan upgrade).
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
    return final_state(await finish_run(record, notify=RESET.notify))


@flow(name="add-profile-entries")
async def add_profile_entries(urns: list[str]) -> int:
    """Enqueue URNs as PENDING; all are validated first, so one bad URN adds none."""
    added = await add_pending_entries(urns)
    get_run_logger().info("added %d of %d URNs (the rest were already queued)", added, len(urns))
    return added


@flow(name="requeue-failed")
async def requeue_failed(urns: list[str] | None = None) -> int:
    """Put FAILED entries back to PENDING: all of them, or only ``urns``."""
    count = await requeue_failed_entries(urns)
    get_run_logger().info("re-queued %d FAILED entries", count)
    return count


def _fetcher_schedule(s: Settings) -> DefaultSchedule:
    return DefaultSchedule(s.cron.profile_fetcher_schedule, s.cron.timezone)


def _reset_schedule(s: Settings) -> DefaultSchedule:
    return DefaultSchedule(s.cron.quota_reset_schedule, s.cron.timezone)


FETCHER = JobSpec(
    profile_fetcher, "profiles", "LinkedIn profile fetcher",
    "Fetch PENDING LinkedIn profiles under the monthly RapidAPI quota (seed 000).",
    tags=("jobpipes", "rapidapi"), schedule=_fetcher_schedule, concurrency=4,
    config_table="cron_job_configs", config_key=PROFILE_FETCHER, config_model=ProfileJobConfig,
    note="Runs claim disjoint entries and share the ledger and the RapidAPI budget, so several may\n"
         "run at once; at most 4. parallel_runs=N hands N - 1 shares of one run to the task workers\n"
         "(python -m deployments.worker.task_worker).",
    notify="always")
RESET = JobSpec(
    quota_reset, "profiles", "RapidAPI quota reset",
    "Open the RapidAPI quota ledger of the period that starts at each fire of cron.quotaResetSchedule (seed 000).",
    tags=("jobpipes", "rapidapi"), schedule=_reset_schedule, config_table="cron_job_configs", config_key=QUOTA_RESET,
    config_model=ProfileJobConfig, notify="failure")
JOBS = (
    FETCHER,
    RESET,
    JobSpec(requeue_failed, "profiles", "Re-queue failed profiles",
            "Put FAILED profile entries back to PENDING (all, or by URN).", tags=("jobpipes", "rapidapi")),
    JobSpec(add_profile_entries, "profiles", "Add profile entries",
            "Enqueue LinkedIn URNs as PENDING profile entries.", tags=("jobpipes", "rapidapi")),
)
