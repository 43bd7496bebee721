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
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.concurrency.asyncio import concurrency
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from core.brands.models import JobRunStatus
from core.brands.schemas import JobMetadata, parse_job_type, parse_metadata, parse_uuid
from core.errors import ConfigError, JobError
from core.http.retry import pause
from core.runs.result import JobMetrics, JobResult
from core.settings import get_settings
from flows.spec import JobSpec
from prefect_api import ensure_concurrency_limit
from tasks.brands import (
    close_open_runs,
    collect_answers,
    load_brand_work,
    open_run,
    reconcile_open_runs,
    score_answers,
    set_run,
    start_run,
)
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
        # The bookkeeping before the first attempt runs side by side: the housekeeping of
        # runs left open, this run's row (in a thread), and the two concurrency limits.
        opened, limits, _ = await asyncio.gather(
            asyncio.to_thread(open_run, kind, brand, customer, meta, scheduled_job_id, job_run_id,
                              current_flow_run_id()),
            _ensure_limits(str(brand), str(customer)), _reconcile(), return_exceptions=True)
        for outcome in (opened, limits):
            if isinstance(outcome, BaseException):
                raise outcome
        run_id = cast(uuid.UUID, opened)
        m.custom["job_run_id"] = str(run_id)
        result = await _attempts(kind, str(brand), str(customer), run_id, meta, m)
        _job_metrics(kind, result, m)
        m.custom["result"] = result

    return await run_job(f"brand_{job_type}", "BRAND_JOB", body, params=params,
                         notify=None if settings.notify_on_failure else "never")  # None: notify.policy (problems)


async def _reconcile() -> None:
    try:
        closed = await reconcile_open_runs()
        if closed:
            get_run_logger().warning("closed %d job runs left open by ended flow runs", closed)
    except Exception as exc:  # noqa: BLE001 - housekeeping must not stop this run
        get_run_logger().warning("could not reconcile open job runs: %s", exc)


async def _ensure_limits(brand_id: str, customer_id: str) -> None:
    """The brand's and the customer's global concurrency limits exist with today's sizes."""
    settings = get_settings().brand_jobs
    names = limit_names(brand_id, customer_id)
    await asyncio.gather(ensure_concurrency_limit(names[0], settings.brand_concurrency),
                         ensure_concurrency_limit(names[1], settings.customer_concurrency))


async def _attempts(kind: str, brand_id: str, customer_id: str, run_id: uuid.UUID, meta: JobMetadata,
                    m: JobMetrics) -> dict[str, Any]:
    """Run the stage(s) until success, a fatal error, or ``maxRetries`` retries.

    Retries are tenacity's (exponential backoff from ``retryBackoffSeconds``). Per attempt:
    wait for a slot of the brand's and the customer's concurrency limits
    (the row stays ``pending`` meanwhile, and the wait does not count against the run
    timeout), then ``processing`` under the timeout. Between attempts the row is
    ``pending`` with the last error; a cancellation marks it ``cancelled``.
    """
    settings = get_settings().brand_jobs
    logger = get_run_logger()
    timeout = meta.timeout_seconds or settings.run_timeout_seconds
    retries = settings.max_retries if meta.max_retries is None else meta.max_retries
    names = limit_names(brand_id, customer_id)  # created by brand_job (_ensure_limits)
    stages: dict[str, Any] = {}

    async def attempt() -> dict[str, Any]:
        m.custom["attempts"] = m.custom.get("attempts", 0) + 1
        try:
            # A lost lease (Prefect briefly unreachable) must not cancel the work mid-answer.
            async with concurrency(list(names), occupy=1, strict=True, timeout_seconds=timeout,
                                   raise_on_lease_renewal_failure=False):
                start_run(run_id, current_flow_run_id())
                async with asyncio.timeout(timeout):
                    return await STAGES[kind](brand_id, str(run_id), meta.dump())
        except Exception as exc:
            stages.update(getattr(exc, "metrics", None) or {})
            m.custom.update(stages)
            raise

    def error_of(exc: BaseException | None) -> str:
        return (f"timed out after {timeout:g} s" if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}")

    async def before_retry(state: RetryCallState) -> None:
        n, delay = state.attempt_number, state.upcoming_sleep
        error = error_of(state.outcome.exception() if state.outcome else None)
        set_run(run_id, JobRunStatus.PENDING, {"attempts": n, **stages},
                f"attempt {n} failed, retrying in {delay:g} s: {error}")
        logger.warning("attempt %d of %d failed (%s); retrying in %g s", n, retries + 1, error, delay)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=settings.retry_backoff_seconds, min=0),
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and not _fatal(exc)),
        before_sleep=before_retry, sleep=pause, reraise=True)
    try:
        result: dict[str, Any] = await retrying(attempt)
    except Exception as exc:
        set_run(run_id, JobRunStatus.FAILED, {"attempts": m.custom["attempts"], **stages}, error_of(exc))
        # A failed run still reports what its stages did: counts, API calls, item errors (e-mail).
        _job_metrics("data_collection_and_scoring", stages, m)
        if isinstance(exc, TimeoutError):
            raise RunTimedOut(error_of(exc)) from None
        raise
    except BaseException:  # cancelled (Prefect cancellation, SIGTERM): say so, then let it end the run
        set_run(run_id, JobRunStatus.CANCELLED, {"attempts": m.custom["attempts"], **stages},
                "cancelled while running")
        raise
    set_run(run_id, JobRunStatus.COMPLETED, {"attempts": m.custom["attempts"], **result}, None)
    return result


async def _mark_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """A cancelled flow run leaves its job run ``cancelled``, not stuck in ``processing``."""
    close_open_runs(str(flow_run.id), JobRunStatus.CANCELLED, "the Prefect flow run was cancelled")


async def _mark_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    close_open_runs(str(flow_run.id), JobRunStatus.FAILED, f"the Prefect flow run crashed: {state.message}")


async def _mark_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """Whatever failed outside the attempts (Prefect API, database): the row says so."""
    close_open_runs(str(flow_run.id), JobRunStatus.FAILED, f"the Prefect flow run failed: {state.message}")


brand_job = brand_job.with_options(on_cancellation=[_mark_cancelled], on_crashed=[_mark_crashed],
                                   on_failure=[_mark_failed])


JOBS = (
    JobSpec(brand_job, "brands", "Brand job",
            "Brand data collection and/or scoring (seed 003). One schedule per brand job, created by the "
            "admin API (deployments.api.app) or deployments.control.brand_admin, with its parameters.",
            tags=("jobpipes", "brands"), shared=True),
)
