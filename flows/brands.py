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

from prefect import flow

from core.brands.models import JobRunStatus
from core.brands.schemas import parse_job_type, parse_metadata, parse_uuid
from core.errors import ConfigError, JobError
from core.runs.deferral import counting_deferred
from core.runs.result import JobMetrics, JobResult
from core.settings import get_settings
from flows.spec import JobSpec
from tasks.brands import (
    close_open_runs,
    collect_answers,
    load_brand_work,
    open_run,
    score_answers,
)
from tasks.brands.attempts import ensure_limits, job_metrics, reconcile, run_attempts
from tasks.runs import current_flow_run_id, final_state, run_job

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
    # Answers the collectors said "later" for are no failure: the brand's next run asks them.
    if collected == 0 and not (metrics["deferred_executions"] or metrics["deferred_waiting"]):
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


STAGES: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "data_collection": data_collection,
    "scoring": scoring,
    "data_collection_and_scoring": data_collection_and_scoring,
}


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
            open_run(kind, brand, customer, meta, scheduled_job_id, job_run_id, current_flow_run_id()),
            ensure_limits(str(brand), str(customer)), reconcile(), return_exceptions=True)
        for outcome in (opened, limits):
            if isinstance(outcome, BaseException):
                raise outcome
        run_id = cast(uuid.UUID, opened)
        m.custom["job_run_id"] = str(run_id)
        stage = STAGES[kind]
        result = await run_attempts(kind, lambda: stage(str(brand), str(run_id), meta.dump()), str(brand),
                                    str(customer), run_id, meta, m)
        job_metrics(kind, result, m)
        m.custom["result"] = result

    return final_state(await run_job(f"brand_{job_type}", "BRAND_JOB", body, params=params,
                         notify=None if settings.notify_on_failure else "never",  # None: notify.policy (problems)
                         outcome=counting_deferred("answers")))


async def _mark_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """A cancelled flow run leaves its job run ``cancelled``, not stuck in ``processing``."""
    await close_open_runs(str(flow_run.id), JobRunStatus.CANCELLED, "the Prefect flow run was cancelled")


async def _mark_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    await close_open_runs(str(flow_run.id), JobRunStatus.FAILED, f"the Prefect flow run crashed: {state.message}")


async def _mark_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """Whatever failed outside the attempts (Prefect API, database): the row says so."""
    await close_open_runs(str(flow_run.id), JobRunStatus.FAILED, f"the Prefect flow run failed: {state.message}")


brand_job = brand_job.with_options(on_cancellation=[_mark_cancelled], on_crashed=[_mark_crashed],
                                   on_failure=[_mark_failed])


JOBS = (
    JobSpec(brand_job, "brands", "Brand job",
            "Brand data collection and/or scoring (seed 003). One schedule per brand job, created by the "
            "admin API (deployments.api.app) or deployments.control.brand_admin, with its parameters.",
            tags=("jobpipes", "brands"), shared=True),
)
