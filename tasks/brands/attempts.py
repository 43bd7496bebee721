"""The brand job's attempts (seed 003): concurrency slots, run timeout, retries with backoff.

``brand-job`` (``flows.brands``) hands its stage subflow to ``run_attempts``; this module keeps
the ``job_runs`` row in step with each attempt and never decides what a stage does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from prefect import get_run_logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from core.brands.models import JobRunStatus
from core.brands.schemas import JobMetadata
from core.errors import JobError
from core.http.retry import pause
from core.runs.result import JobMetrics
from core.settings import get_settings
from prefect_api import ensure_concurrency_limit, occupy_slots
from tasks.brands import reconcile_open_runs, set_run, start_run
from tasks.runs import current_flow_run_id


class RunTimedOut(JobError):
    """The run went past its timeout (``timeoutSeconds`` or ``brandJobs.runTimeoutSeconds``)."""


def limit_names(brand_id: str, customer_id: str) -> tuple[str, str]:
    return f"brand:{brand_id}", f"customer:{customer_id}"


def job_metrics(job_type: str, result: dict[str, Any], m: JobMetrics) -> None:
    collected = result if job_type == "data_collection" else result.get("data_collection")
    scored = result if job_type == "scoring" else result.get("scoring")
    if collected:
        m.items_processed += collected.get("executions", 0)
        m.items_created += collected.get("successful_executions", 0)
        m.items_skipped += collected.get("skipped_already_collected", 0)
        m.custom["api_calls"] = collected.get("api_calls", 0)
        m.custom["errors"] = collected.get("errors") or []
        m.custom["deferred"] = collected.get("deferred_executions", 0)
    if scored and job_type == "scoring":
        m.items_processed += scored.get("answers_position_scored", 0)
        m.items_updated += scored.get("answers_position_scored", 0)


def fatal(exc: BaseException) -> bool:
    return isinstance(exc, JobError) and exc.fatal


async def reconcile() -> None:
    try:
        closed = await reconcile_open_runs()
        if closed:
            get_run_logger().warning("closed %d job runs left open by ended flow runs", closed)
    except Exception as exc:  # noqa: BLE001 - housekeeping must not stop this run
        get_run_logger().warning("could not reconcile open job runs: %s", exc)


async def ensure_limits(brand_id: str, customer_id: str) -> None:
    """The brand's and the customer's global concurrency limits exist with today's sizes."""
    settings = get_settings().brand_jobs
    names = limit_names(brand_id, customer_id)
    await asyncio.gather(ensure_concurrency_limit(names[0], settings.brand_concurrency),
                         ensure_concurrency_limit(names[1], settings.customer_concurrency))


async def run_attempts(kind: str, stage: Callable[[], Awaitable[dict[str, Any]]], brand_id: str,
                       customer_id: str, run_id: uuid.UUID, meta: JobMetadata, m: JobMetrics) -> dict[str, Any]:
    """Run ``stage`` (the job type ``kind``'s subflow) until success, a fatal error, or
    ``maxRetries`` retries; the ``job_runs`` row follows every step.

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
    names = limit_names(brand_id, customer_id)  # created by brand_job (ensure_limits)
    stages: dict[str, Any] = {}

    async def attempt() -> dict[str, Any]:
        m.custom["attempts"] = m.custom.get("attempts", 0) + 1
        try:
            # A lost lease (Prefect briefly unreachable) must not cancel the work mid-answer.
            async with occupy_slots(list(names), timeout):
                await start_run(run_id, current_flow_run_id())
                async with asyncio.timeout(timeout):
                    return await stage()
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
        await set_run(run_id, JobRunStatus.PENDING, {"attempts": n, **stages},
                f"attempt {n} failed, retrying in {delay:g} s: {error}")
        logger.warning("attempt %d of %d failed (%s); retrying in %g s", n, retries + 1, error, delay)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=settings.retry_backoff_seconds, min=0),
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and not fatal(exc)),
        before_sleep=before_retry, sleep=pause, reraise=True)
    try:
        result: dict[str, Any] = await retrying(attempt)
    except Exception as exc:
        await set_run(run_id, JobRunStatus.FAILED, {"attempts": m.custom["attempts"], **stages}, error_of(exc))
        # A failed run still reports what its stages did: counts, API calls, item errors (e-mail).
        job_metrics("data_collection_and_scoring", stages, m)
        if isinstance(exc, TimeoutError):
            raise RunTimedOut(error_of(exc)) from None
        raise
    except BaseException:  # cancelled (Prefect cancellation, SIGTERM): say so, then let it end the run
        # shielded: a second cancellation must not leave the row "processing"
        await asyncio.shield(set_run(run_id, JobRunStatus.CANCELLED, {"attempts": m.custom["attempts"], **stages},
                                     "cancelled while running"))
        raise
    await set_run(run_id, JobRunStatus.COMPLETED, {"attempts": m.custom["attempts"], **result}, None)
    return result
