"""How every job starts and ends (seed 004's JobRunner, Prefect-native).

``run_job`` times the body, logs one structured line at start and at completion, and hands
the outcome to ``finish_run``: the ``job_execution_history`` row, a table artifact on the
flow run, the e-mail, and JobRunFailed when the job FAILED. A job's flow ends with
``return final_state(await run_job(...))``: a Prefect state named after the status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from prefect import get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed

from core.config import NotifyPolicy
from core.db.types import utcnow
from core.errors import JobRunFailed, RateLimitedError
from core.notify import job_policy, should_notify
from core.runs.errors import join_errors
from core.runs.history import RunOutcome, RunRecord
from core.runs.models import RunStatus
from core.runs.result import JobMetrics, JobResult
from core.settings import get_settings
from tasks._common import ride_out_db
from tasks.followups import fill_in_followups, mark_pending
from tasks.history import publish_job_result, record_history
from tasks.notify import notify_completion

R = TypeVar("R")


# The Prefect state a finished job ends in, by its JobResult status: the UI's run list, the
# flow run page and the operations overview show the name; FAILED raises (a Failed state).
STATE_NAMES = {RunStatus.SUCCESS: "Completed", RunStatus.PARTIAL: "Partial",
               RunStatus.RATE_LIMITED: "Rate limited", RunStatus.QUOTA_EXCEEDED: "Quota exceeded"}


def final_state(result: R) -> R:
    """What a job's flow returns: a Completed state named after the JobResult's status
    (*Partial*, *Rate limited*, *Quota exceeded*; *Completed* for SUCCESS) whose message is
    the result's one-line summary and whose data is the result. Prefect makes a returned state
    the run's final state and hands its data to the caller, so ``await flow()`` still returns
    the JobResult (or None, for a disabled job)."""
    if not isinstance(result, JobResult):
        return result
    name = STATE_NAMES.get(RunStatus(result.status), result.status.title())
    return cast(R, Completed(data=result, name=name, message=result.summary()))


def current_flow_run_id() -> str | None:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None


def log_start(job_name: str, params: dict[str, Any]) -> None:
    get_run_logger().info(json.dumps({"event": "job_started", "job_name": job_name,
                                      "params": params, "flow_run_id": current_flow_run_id()},
                                     sort_keys=True, default=str))


async def finish_run(record: RunRecord, *, notify: NotifyPolicy | None = "always") -> JobResult:
    """Record, publish and announce the run; raise JobRunFailed if it FAILED.

    ``notify`` is the job's own policy (None: ``notify.policy``); ``notify.jobs`` overrides it
    per job (``core.notify.job_policy``)."""
    logger = get_run_logger()
    result = JobResult.from_record(record)
    try:
        row_id = await record_history(record)
    except Exception as exc:
        # The run happened and nobody can read it from the history: the e-mail still goes out
        # (it says why), then the run fails.
        logger.exception("history row of %s not written", record.job_name)
        note = f"history row not written: {type(exc).__name__}: {exc}"
        # The run ends Failed in Prefect; the e-mail says so, with what the work itself reported.
        await announce(replace(record, status=RunStatus.FAILED.value,
                               error_summary="\n".join(filter(None, [note, record.error_summary]))),
                       notify, whatever_status=True)
        raise
    published = await publish_job_result(result, record.metrics.get("errors"))
    if not published and record.flow_run_id:
        await _leave_for_later(row_id, "artifact_pending")
    sent = await announce(record, notify)
    if sent is False:
        await _leave_for_later(row_id, "email_pending")
    # What outages left out of earlier runs, where this run found Prefect's API and SMTP up.
    await fill_in_followups(artifacts=published, emails=sent is not False)
    logger.info(result.log_line())
    if record.status == RunStatus.FAILED:
        raise JobRunFailed(f"{record.job_name} FAILED: {record.error_summary}")
    return result


async def _leave_for_later(row_id: int, what: str) -> None:
    """Say on the run's history row what a later run must make (``tasks.followups``)."""
    try:
        await ride_out_db(mark_pending, row_id, what, what="the run's follow-up")
    except Exception as exc:  # noqa: BLE001 - logged: the run happened
        get_run_logger().warning("could not leave the run's %s for later: %s: %s", what, type(exc).__name__, exc)


async def announce(record: RunRecord, notify: NotifyPolicy | None, *, whatever_status: bool = False) -> bool | None:
    """E-mail the run if its policy says so (``core.notify.job_policy``; ``whatever_status``:
    unless the policy is ``never``); a lost e-mail is logged, never raised: the run happened.
    Returns whether it was sent (None: not wanted)."""
    settings = get_settings().notify
    policy = job_policy(record.job_name, notify, settings)
    wanted = policy != "never" if whatever_status else should_notify(policy, record.status)
    # Disabled e-mail (notify.enabled: false): nothing to build or send.
    if not (settings.enabled and wanted):
        return None
    try:
        await notify_completion(record)
    except Exception as exc:  # noqa: BLE001 - the run happened; a lost e-mail must not undo it
        get_run_logger().warning("completion e-mail not sent (a later run sends it): %s: %s",
                                 type(exc).__name__, exc)
        return False
    return True


async def run_job(
    job_name: str,
    job_type: str,
    body: Callable[[JobMetrics], Awaitable[None]],
    *,
    params: dict[str, Any],
    notify: NotifyPolicy | None = None,
    outcome: RunOutcome | None = None,
) -> JobResult:
    """Run ``body(metrics)``: RATE_LIMITED if it stopped on a 429 (a graceful stop, not a
    failure), FAILED if it raised anything else (error recorded, traceback logged), PARTIAL if
    it reported per-item ``errors`` in ``metrics.custom``, else SUCCESS. ``outcome`` lets a
    family decide the record itself (``core.runs.history.RunOutcome``). By default
    (``notify=None``) PARTIAL and FAILED runs are e-mailed (``notify.policy``, ``problems``)."""
    started = utcnow()
    log_start(job_name, params)
    metrics = JobMetrics()
    error: str | None = None
    raised: BaseException | None = None
    rate_limited = False
    try:
        await body(metrics)
    except RateLimitedError as exc:
        raised = exc
        # Not a failure: progress so far is committed and the next run continues (seed 001).
        rate_limited = True
        if "api_calls" not in metrics.custom and "api_requests_made" not in metrics.custom:
            metrics.custom["api_calls"] = exc.attempts  # the body counted nothing: at least the failing call
        wait = f"; retry after {exc.retry_after:g} s" if exc.retry_after else ""
        error = f"rate limited ({exc.limit_type or 'unknown'} limit){wait}: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised as JobRunFailed
        raised = exc
        error = f"{type(exc).__name__}: {exc}"
        get_run_logger().exception("%s stopped by an error", job_name)
    failures = len(metrics.custom.get("errors") or [])
    status = (RunStatus.RATE_LIMITED if rate_limited else RunStatus.FAILED if error
              else RunStatus.PARTIAL if failures else RunStatus.SUCCESS)
    record = RunRecord(
        job_name=job_name, job_type=job_type, status=status.value,
        started_at=started, finished_at=utcnow(), flow_run_id=current_flow_run_id(),
        total_processed=metrics.items_processed, successful_count=metrics.items_created + metrics.items_updated,
        items_created=metrics.items_created, items_updated=metrics.items_updated,
        items_skipped=metrics.items_skipped, failed_count=failures,
        api_calls_made=int(metrics.custom.get("api_calls", metrics.custom.get("api_requests_made", 0))),
        error_summary=error or join_errors(metrics.custom.get("errors") or []),
        metrics={"params": params, **metrics.custom},
    )
    if outcome is not None:
        record = outcome(record, raised)
    return await finish_run(record, notify=notify)
