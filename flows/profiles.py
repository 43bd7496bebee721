"""Profile-fetcher flows (seed 000): ``profile_fetcher``, ``quota_reset``, and queue management
(``add_profile_entries``, ``requeue_failed``)."""

from __future__ import annotations

import asyncio
import uuid

from prefect import flow, get_run_logger

from core.db.types import utcnow
from core.profiles.entries import ClaimedEntry
from core.profiles.job_configs import PROFILE_FETCHER, QUOTA_RESET, JobConfig
from core.profiles.quota import PROVIDER
from core.profiles.tally import RunTally
from core.runs.errors import item_error
from core.runs.history import RunRecord
from core.runs.models import RunStatus
from core.runs.result import JobResult
from core.settings import get_settings
from tasks.profiles import (
    BatchReport,
    QuotaGrant,
    add_pending_entries,
    finished_entries,
    load_job_config,
    mark_provider_quota_exhausted,
    process_profile_batch,
    release_dead_claims,
    release_entries,
    release_gate,
    release_stale_entries,
    requeue_failed_entries,
    reserve_and_claim,
    settle_quota,
    start_parallel_runs,
    start_quota_period,
)
from tasks.runs import current_flow_run_id, finish_run, log_start


@flow(name="profile-fetcher")
async def profile_fetcher(
    batch_size: int | None = None,
    respect_quota: bool | None = None,
    max_batches: int | None = None,
    parallel_runs: int = 1,
) -> JobResult | None:
    """Fetch pending profiles batch by batch until none are left or the quota runs out.

    ``batch_size`` and ``respect_quota`` default to the job's ``cron_job_configs`` row;
    ``max_batches`` bounds one run (None: until done). ``parallel_runs`` > 1 (from a
    deployment) first starts that many - 1 more runs of the deployment, which the pool's
    other workers pick up: runs claim disjoint entries and share the quota ledger and the
    RapidAPI budget, so each worker adds throughput until the provider's limit binds.
    Returns the run's JobResult, or None when the job is disabled in ``cron_job_configs``.
    """
    logger = get_run_logger()
    settings = get_settings()
    started = utcnow()
    log_start(PROFILE_FETCHER, {"batch_size": batch_size, "respect_quota": respect_quota,
                                "max_batches": max_batches})
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not 1 <= parallel_runs <= 16:
        raise ValueError(f"parallel_runs must be within 1..16, got {parallel_runs}")
    helpers = await start_parallel_runs(parallel_runs - 1, {"batch_size": batch_size, "respect_quota": respect_quota,
                                                            "max_batches": max_batches})
    run_id = current_flow_run_id() or f"local-{uuid.uuid4()}"
    tally = RunTally()
    config: JobConfig | None = None
    size, respect, recovered = batch_size, respect_quota, 0
    try:
        config = await load_job_config(PROFILE_FETCHER)
        size = batch_size or config.batch_size
        respect = config.respect_quota if respect_quota is None else respect_quota
        if not config.enabled:
            logger.info("profile_fetcher is disabled in cron_job_configs; nothing to do")
            return None
        dead = await release_dead_claims(run_id)  # runs Prefect shows ended: released at once
        if dead:
            logger.warning("released the claims of %d ended runs: %s", len(dead), dead)
        recovered = await release_stale_entries(settings.cron.fetching_timeout_minutes)
        if recovered:
            logger.warning("re-queued %d entries orphaned by an earlier run", recovered)
        await _fetch_batches(tally, run_id, size, respect, max_batches)
    except Exception as exc:  # noqa: BLE001 - recorded and e-mailed below, then the run fails
        # Whatever ended the run, it gets its history row and its e-mail (seed 000, step 4);
        # finish_run then raises JobRunFailed, so Prefect marks the flow run Failed.
        logger.exception("profile_fetcher stopped by an unexpected error")
        first_line = (str(exc).strip().splitlines() or [""])[0]  # the full traceback is in the log
        tally.fatal_error = f"unexpected error: {type(exc).__name__}: {first_line}"[:500]

    record = RunRecord(
        job_name=PROFILE_FETCHER,
        job_type=config.job_type if config else PROFILE_FETCHER.upper(),
        status=tally.status().value,
        started_at=started,
        finished_at=utcnow(),
        flow_run_id=current_flow_run_id(),
        total_processed=tally.processed,
        successful_count=tally.succeeded,
        failed_count=tally.failed,
        items_created=tally.created,
        items_updated=tally.updated,
        api_calls_made=tally.api_calls,
        quota_remaining=tally.quota_remaining,
        error_summary=tally.error_summary(),
        metrics={"batches": tally.batches, "batch_size": size, "respect_quota": respect,
                 "recovered_orphans": recovered, "parallel_runs": helpers, "errors": tally.errors},
        config_id=config.id if config else None,
    )
    return await finish_run(record)


async def _fetch_batches(
    tally: RunTally, run_id: str, size: int, respect: bool, max_batches: int | None
) -> None:
    """Reserve, claim and process batches until none are left, the quota runs out, a fatal
    provider error stops the run or ``max_batches`` is reached; ``tally`` keeps the counts.

    A pipeline: up to ``rapidapi.batchesInFlight`` batches at once, so the next batch is
    claimed and fetching while the previous one finishes its answers and writes; all of a
    run's batches share one ``rapidapi.concurrency`` of requests in flight. Each batch is
    still claimed, written and settled on its own, so a crash holds at most that many."""
    logger = get_run_logger()
    settings = get_settings()
    limit, depth = settings.rapidapi.monthly_quota, settings.rapidapi.batches_in_flight
    in_flight: dict[asyncio.Task[BatchReport], tuple[list[ClaimedEntry], QuotaGrant]] = {}
    claiming, failure = True, None
    try:
        while claiming or in_flight:
            while claiming and len(in_flight) < depth and (max_batches is None or tally.batches
                                                              + len(in_flight) < max_batches):
                claim = await reserve_and_claim(PROVIDER, size, run_id, monthly_limit=limit, respect_quota=respect)
                tally.quota_remaining = claim.grant.remaining
                if claim.quota_granted == 0:
                    claiming = False
                    if tally.processed == 0 and not in_flight:
                        tally.quota_exceeded_at_start = True
                        tally.notes.append("monthly quota exhausted before the run started")
                    else:
                        tally.stopped_by_quota = True  # noted below, once the batches in flight count
                    break
                if claim.quota_granted < size:
                    logger.info("quota nearly spent: granted %d of %d", claim.quota_granted, size)
                if not claim.entries:
                    claiming = False
                    break
                job = asyncio.ensure_future(process_profile_batch(claim.entries, claim.grant, gate=run_id))
                in_flight[job] = (claim.entries, claim.grant)
            if max_batches is not None and tally.batches + len(in_flight) >= max_batches:
                claiming = False
            if not in_flight:
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for job in done:
                batch, grant = in_flight.pop(job)
                if job.exception() is not None:
                    failure = failure or job.exception()
                    claiming = False
                    await _give_back(tally, batch, grant)
                    continue
                claiming = await _count(tally, job.result(), grant) and claiming
    finally:
        release_gate(run_id)
    if tally.stopped_by_quota and not any("provider reports" in n for n in tally.notes):
        tally.notes.append(f"monthly quota exhausted after {tally.processed} entries")
    if failure is not None:
        raise failure


async def _count(tally: RunTally, report: BatchReport, grant: QuotaGrant) -> bool:
    """Add a finished batch to the run; False when the run must stop claiming."""
    tally.quota_remaining = report.quota_remaining
    tally.add_batch(succeeded=report.succeeded, errors=report.errors,
                    api_calls=report.api_calls, created=report.created, updated=report.updated)
    if report.provider_quota_exhausted:
        await mark_provider_quota_exhausted(grant)
        tally.quota_remaining = 0
        tally.stopped_by_quota = True
        if tally.processed == 0:
            tally.quota_exceeded_at_start = True
        tally.notes.append(f"provider reports the monthly quota spent: {report.fatal_error}")
        return False
    if report.fatal_error:
        tally.fatal_error = tally.fatal_error or report.fatal_error
        return False
    return True


async def _give_back(tally: RunTally, batch: list[ClaimedEntry], grant: QuotaGrant) -> None:
    """After an unknown failure inside a batch: entries still FETCHING go back to PENDING,
    those it finished are counted, and the whole reservation counts as spent (its HTTP calls
    are unknown), so the ledger can only over-count. Best effort: if the database is what
    failed, the stale sweep of a later run re-queues the entries."""
    logger = get_run_logger()
    ids = [e.id for e in batch]
    try:
        released = await release_entries(ids, "re-queued: batch task crashed")
        done = await finished_entries(ids)
        errors = [item_error(o.urn, o.error) for o in done if o.error is not None]
        tally.add_batch(succeeded=len(done) - len(errors), errors=errors, api_calls=0)
        tally.notes.append(f"a batch of {len(batch)} crashed: {len(done) - len(errors)} completed,"
                           f" {len(errors)} failed, {released} re-queued; its API calls are not counted")
    except Exception as exc:  # noqa: BLE001 - keep the original error; this one is logged
        logger.error("could not re-queue the crashed batch: %s: %s", type(exc).__name__, exc)
    try:
        tally.quota_remaining = await settle_quota(grant, grant.granted)
    except Exception as exc:  # noqa: BLE001
        logger.error("could not settle the crashed batch's quota: %s: %s", type(exc).__name__, exc)


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
    return await finish_run(record, notify="failure")


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
