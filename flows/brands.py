"""Brand data collection and scoring (seed 003) as flows.

``brand-job`` is what a schedule, the admin API's trigger or a notebook starts. It owns
the ``job_runs`` row, holds the brand's and the customer's concurrency slots (Prefect
global concurrency limits), enforces the run timeout, re-runs a failed attempt with
exponential backoff, and reports through the job-result framework (history row,
artifact, e-mail on failure). The work itself is three subflows:

    data-collection                 queries x collectors -> answers (raw JSON + rows)
    scoring                         positions, citations, sentiment -> brand aggregates
    data-collection-and-scoring     collection, then scoring only if collection succeeded
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from sqlalchemy import select, update

from core.brands import repo
from core.brands.models import JobRun, JobRunStatus
from core.brands.schemas import JobMetadata, parse_job_type, parse_metadata, parse_uuid
from core.cron import next_run
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.errors import ConfigError, JobError
from core.http.retry import pause
from core.runs.result import JobMetrics, JobResult
from core.settings import get_settings
from tasks._common import db_url
from tasks.brands import collect_answers, load_brand_work, score_answers
from tasks.runs import current_flow_run_id, run_job

BRAND_JOB_FLOW = "brand-job"
BRAND_JOB_DEPLOYMENT = f"{BRAND_JOB_FLOW}/{BRAND_JOB_FLOW}"


class CollectionFailed(JobError):
    """Data collection produced no answer; scoring must not run on nothing new."""

    def __init__(self, message: str, metrics: dict[str, Any]) -> None:
        super().__init__(message)
        self.metrics = {"data_collection": metrics}


class ScoringFailed(JobError):
    """Scoring failed after a successful collection; keeps the collection's metrics."""

    def __init__(self, message: str, metrics: dict[str, Any]) -> None:
        super().__init__(message)
        self.metrics = metrics


@flow(name="data-collection", flow_run_name="data-collection-{brand_id}")
async def data_collection(brand_id: str, job_run_id: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the brand's active queries through the selected collectors; fails when no
    answer at all could be collected (no active query, or every execution failed)."""
    meta = parse_metadata(metadata)
    work = await load_brand_work(brand_id)
    if not work.queries:  # retrying cannot help
        raise ConfigError(f"brand_id: brand {work.name!r} has no active queries")
    metrics = await collect_answers(job_run_id, work, meta.collectors, meta.parallel)
    collected = metrics["successful_executions"] + metrics["skipped_already_collected"]
    if collected == 0:
        first = metrics["errors"][0]["error"] if metrics["errors"] else "no execution"
        raise CollectionFailed(f"all {metrics['failed_executions']} executions failed (first: {first})", metrics)
    return metrics


@flow(name="scoring", flow_run_name="scoring-{brand_id}")
async def scoring(brand_id: str, job_run_id: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the brand's unscored answers (``positionLimit``/``sentimentLimit`` at most)."""
    meta = parse_metadata(metadata)
    work = await load_brand_work(brand_id)
    return await score_answers(job_run_id, work, meta.position_limit, meta.sentiment_limit)


@flow(name="data-collection-and-scoring", flow_run_name="collect-and-score-{brand_id}")
async def data_collection_and_scoring(brand_id: str, job_run_id: str,
                                      metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collection, then scoring only if collection succeeded (its failure is raised)."""
    collected = await data_collection(brand_id, job_run_id, metadata)
    try:
        scored = await scoring(brand_id, job_run_id, metadata)
    except Exception as exc:
        raise ScoringFailed(f"scoring failed: {type(exc).__name__}: {exc}", {"data_collection": collected}) from exc
    return {"data_collection": collected, "scoring": scored}


class RunTimedOut(JobError):
    """The run went past its timeout (``timeoutSeconds`` or ``brandJobs.runTimeoutSeconds``)."""


STAGES: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "data_collection": data_collection,
    "scoring": scoring,
    "data_collection_and_scoring": data_collection_and_scoring,
}


async def _ensure_limit(name: str, limit: int) -> None:
    async with get_client() as client:
        try:
            current = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            except ObjectAlreadyExists:
                pass
            return
        if current.limit != limit:
            await client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit))


def limit_names(brand_id: str, customer_id: str) -> tuple[str, str]:
    return f"brand:{brand_id}", f"customer:{customer_id}"


def _job_metrics(job_type: str, result: dict[str, Any], m: JobMetrics) -> None:
    collected = result if job_type == "data_collection" else result.get("data_collection")
    scored = result if job_type == "scoring" else result.get("scoring")
    if collected:
        m.items_processed += collected.get("executions", 0)
        m.items_created += collected.get("successful_executions", 0)
        m.items_skipped += collected.get("skipped_already_collected", 0)
        m.custom["api_calls"] = collected.get("api_calls", 0)
        m.custom["errors"] = collected.get("errors") or []
    if scored and job_type == "scoring":
        m.items_processed += scored.get("answers_position_scored", 0)
        m.items_updated += scored.get("answers_position_scored", 0)


def _fatal(exc: BaseException) -> bool:
    return isinstance(exc, JobError) and exc.fatal


@flow(name=BRAND_JOB_FLOW, flow_run_name="{job_type}-{brand_id}")
async def brand_job(brand_id: str, customer_id: str, job_type: str = "data_collection_and_scoring",
                    metadata: dict[str, Any] | None = None, scheduled_job_id: str | None = None,
                    job_run_id: str | None = None) -> JobResult:
    """One brand job run: validate, record in ``job_runs``, run the stage(s) under the
    brand's and customer's concurrency limits with a timeout, retry with backoff."""
    settings = get_settings().brand_jobs
    params = {"brand_id": brand_id, "customer_id": customer_id, "job_type": job_type,
              "metadata": metadata or {}, "scheduled_job_id": scheduled_job_id}

    async def body(m: JobMetrics) -> None:
        kind = parse_job_type(job_type)
        brand, customer = parse_uuid(brand_id, "brand_id"), parse_uuid(customer_id, "customer_id")
        meta = parse_metadata(metadata)
        await load_brand_work(str(brand), str(customer))  # ConfigError naming brand_id/customer_id
        try:
            closed = await reconcile_open_runs()
            if closed:
                get_run_logger().warning("closed %d job runs left open by ended flow runs", closed)
        except Exception as exc:  # noqa: BLE001 - housekeeping must not stop this run
            get_run_logger().warning("could not reconcile open job runs: %s", exc)
        run_id = _open_run(kind, brand, customer, meta, scheduled_job_id, job_run_id)
        m.custom["job_run_id"] = str(run_id)
        result = await _attempts(kind, str(brand), str(customer), run_id, meta, m)
        _job_metrics(kind, result, m)
        m.custom["result"] = result

    return await run_job(f"brand_{job_type}", "BRAND_JOB", body, params=params,
                         notify="failure" if settings.notify_on_failure else "never")


def _open_run(kind: str, brand: uuid.UUID, customer: uuid.UUID, meta: JobMetadata,
              scheduled_job_id: str | None, job_run_id: str | None) -> uuid.UUID:
    """The run's ``job_runs`` row: the one a trigger created, or a new one (a schedule
    firing, a manual run). It carries this flow run's id from the start, so the flow's
    failure, crash and cancellation hooks can always find and close it."""
    flow_run_id = current_flow_run_id()
    with session_scope(db_url()) as session:
        if job_run_id:
            run_uuid = parse_uuid(job_run_id, "job_run_id")
            run = session.get(JobRun, run_uuid)
            if run is None:
                raise ConfigError(f"job_run_id: no job run {job_run_id}")
            run.flow_run_id = flow_run_id
            return run_uuid
        scheduled = parse_uuid(scheduled_job_id, "scheduled_job_id") if scheduled_job_id else None
        if scheduled is not None:
            row = session.get(ScheduledJob, scheduled)
            if row is None:  # deleted while Prefect still held its schedule: do not run it
                raise ConfigError(f"scheduled_job_id: no scheduled job {scheduled_job_id} (deleted?)")
            now = utcnow()
            row.last_run_time = now
            row.next_run_time = next_run(row.cron_expression, row.timezone, now)
        run = repo.create_job_run(session, brand_id=brand, customer_id=customer, job_type=kind,
                                  metadata=meta.dump(), scheduled_job_id=scheduled)
        run.flow_run_id = flow_run_id
        return run.id


def _set_run(run_id: uuid.UUID, status: str, metrics: dict[str, Any], error: str | None) -> None:
    with session_scope(db_url()) as session:
        repo.finish_job_run(session, run_id, status=status, metrics=metrics, error=error)


async def _attempts(kind: str, brand_id: str, customer_id: str, run_id: uuid.UUID, meta: JobMetadata,
                    m: JobMetrics) -> dict[str, Any]:
    """Run the stage(s) until success, a fatal error, or ``maxRetries`` retries.

    Per attempt: wait for a slot of the brand's and the customer's concurrency limits
    (the row stays ``pending`` meanwhile, and the wait does not count against the run
    timeout), then ``processing`` under the timeout. Between attempts the row is
    ``pending`` with the last error; a cancellation marks it ``cancelled``.
    """
    settings = get_settings().brand_jobs
    logger = get_run_logger()
    timeout = meta.timeout_seconds or settings.run_timeout_seconds
    retries = settings.max_retries if meta.max_retries is None else meta.max_retries
    names = limit_names(brand_id, customer_id)
    await asyncio.gather(_ensure_limit(names[0], settings.brand_concurrency),
                         _ensure_limit(names[1], settings.customer_concurrency))
    attempt = 0
    stages: dict[str, Any] = {}
    while True:
        attempt += 1
        m.custom["attempts"] = attempt
        try:
            # A lost lease (Prefect briefly unreachable) must not cancel the work mid-answer.
            async with concurrency(list(names), occupy=1, strict=True, timeout_seconds=timeout,
                                   raise_on_lease_renewal_failure=False):
                with session_scope(db_url()) as session:
                    repo.start_job_run(session, run_id, current_flow_run_id())
                async with asyncio.timeout(timeout):
                    result = await STAGES[kind](brand_id, str(run_id), meta.dump())
        except Exception as exc:
            stages.update(getattr(exc, "metrics", None) or {})
            m.custom.update(stages)
            error = (f"timed out after {timeout:g} s" if isinstance(exc, TimeoutError)
                     else f"{type(exc).__name__}: {exc}")
            if _fatal(exc) or attempt > retries:
                _set_run(run_id, JobRunStatus.FAILED, {"attempts": attempt, **stages}, error)
                if isinstance(exc, TimeoutError):
                    raise RunTimedOut(error) from None
                raise
            delay = settings.retry_backoff_seconds * 2 ** (attempt - 1)
            _set_run(run_id, JobRunStatus.PENDING, {"attempts": attempt, **stages},
                     f"attempt {attempt} failed, retrying in {delay:g} s: {error}")
            logger.warning("attempt %d of %d failed (%s); retrying in %g s", attempt, retries + 1, error, delay)
            await pause(delay)
            continue
        except BaseException:  # cancelled (Prefect cancellation, SIGTERM): say so, then let it end the run
            _set_run(run_id, JobRunStatus.CANCELLED, {"attempts": attempt, **stages}, "cancelled while running")
            raise
        _set_run(run_id, JobRunStatus.COMPLETED, {"attempts": attempt, **result}, None)
        return result


async def reconcile_open_runs(older_than: timedelta = timedelta(minutes=1)) -> int:
    """Close job runs still ``pending``/``processing`` whose Prefect flow run has ended.

    The flow's own hooks close its row on failure, crash or cancellation, but not when its
    process was killed outright (SIGKILL, OOM, a lost machine): Prefect then marks the flow
    run crashed from outside. Every brand-job run calls this first; returns rows closed.
    """
    with session_scope(db_url()) as session:
        open_runs = session.execute(select(JobRun.id, JobRun.flow_run_id).where(
            JobRun.status.in_([JobRunStatus.PENDING, JobRunStatus.PROCESSING]), JobRun.flow_run_id.is_not(None),
            JobRun.created_at < utcnow() - older_than)).all()
    if not open_runs:
        return 0
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[uuid.UUID(r.flow_run_id) for r in open_runs])))
    ended = {str(run.id): run.state for run in flow_runs if run.state is not None and run.state.is_final()}
    for _, flow_run_id in open_runs:
        state = ended.get(flow_run_id)
        if state is not None:
            status = JobRunStatus.CANCELLED if state.is_cancelled() else JobRunStatus.FAILED
            _close_open_runs(flow_run_id, status, f"its Prefect flow run ended {state.type.value} "
                             f"({state.message or 'no message'}) without closing it")
    return sum(1 for _, f in open_runs if f in ended)


async def _mark_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """A cancelled flow run leaves its job run ``cancelled``, not stuck in ``processing``."""
    _close_open_runs(str(flow_run.id), JobRunStatus.CANCELLED, "the Prefect flow run was cancelled")


async def _mark_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    _close_open_runs(str(flow_run.id), JobRunStatus.FAILED, f"the Prefect flow run crashed: {state.message}")


async def _mark_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """Whatever failed outside the attempts (Prefect API, database): the row says so."""
    _close_open_runs(str(flow_run.id), JobRunStatus.FAILED, f"the Prefect flow run failed: {state.message}")


def _close_open_runs(flow_run_id: str, status: str, error: str) -> None:
    with session_scope(db_url()) as session:
        session.execute(update(JobRun).where(JobRun.flow_run_id == flow_run_id,
                                             JobRun.status.in_([JobRunStatus.PENDING, JobRunStatus.PROCESSING]))
                        .values(status=status, error_message=error, finished_at=utcnow()))


brand_job = brand_job.with_options(on_cancellation=[_mark_cancelled], on_crashed=[_mark_crashed],
                                   on_failure=[_mark_failed])


def scores_of(brand_id: str) -> list[dict[str, Any]]:
    """The brand's latest brand-level scores (own brand and competitors), best first."""
    with session_scope(db_url()) as session:
        return [{"brand": r.brand_name, "own": r.is_own_brand, "visibility": r.visibility,
                 "share_of_voice": r.share_of_voice, "first_mention_rate": r.first_mention_rate,
                 "average_position": r.average_position, "average_sentiment": r.average_sentiment,
                 "answers": r.answers} for r in repo.latest_scores(session, uuid.UUID(brand_id))]

