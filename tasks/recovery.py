"""Release what a crashed run held, in every family, and write its CRASHED history row.

Job-queue jobs are not released here: every jobs worker recovers a dead run's jobs by
liveness (``core.jobqueue.recovery``) within a few heartbeats.

A run is keyed by its Prefect flow run id everywhere it holds something: profile entries it
claimed (``claimed_by``), brand job runs (``flow_run_id``). Releasing is idempotent: a second
call finds nothing left and writes no second history row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.brands import repo as brands_repo
from core.brands.models import AnswerStatus, JobRunStatus
from core.db import session_scope
from core.db.types import utcnow
from core.profiles import entries
from core.profiles.entries import RunAccount
from core.runs import history
from core.runs.history import RunRecord
from core.runs.models import JobExecutionHistory, RunStatus
from prefect_api.automations import CrashedRun
from tasks._common import db_task, db_url
from tasks.profiles import release_run_claims


@db_task
async def release_run(run: CrashedRun) -> tuple[dict[str, Any], RunRecord | None]:
    """Free the run's claims and close its rows in one transaction; returns what was released
    and the CRASHED history row to announce: the one it wrote, or the one the operations
    overview wrote before the first release (None on a second release)."""
    now = utcnow()
    message = f"the Prefect flow run {run.state.lower()}: {run.message or 'no message'}"
    with session_scope(db_url()) as session:
        before = entries.account_of_run(session, run.flow_run_id)  # what it had finished itself
    released: dict[str, Any] = dict(await release_run_claims(run.flow_run_id))
    record: RunRecord | None = None
    with session_scope(db_url()) as session:
        released["brand_job_runs_closed"] = brands_repo.close_runs_of_flow_run(
            session, run.flow_run_id, status=JobRunStatus.FAILED, error=message)
        counts = _counts_of(session, run.flow_run_id, before, released)
        if history.has_run(session, run.flow_run_id):  # e.g. the operations overview recorded the crash
            for row in session.execute(select(JobExecutionHistory).where(
                    JobExecutionHistory.flow_run_id == run.flow_run_id,
                    JobExecutionHistory.status == RunStatus.CRASHED)).scalars():
                if "released" not in (row.metrics or {}):  # a second release finds nothing: keep the first
                    row.metrics = {**(row.metrics or {}), "released": released}
                    for name, value in counts.items():
                        setattr(row, name, value)
                    record = history.record_of(row)
        else:
            job_name = history.job_name_of(run.flow_name, run.parameters)
            record = RunRecord(
                job_name=job_name, job_type=job_name.upper(), status=RunStatus.CRASHED.value,
                started_at=run.started_at or now, finished_at=now, flow_run_id=run.flow_run_id,
                error_summary=message, metrics={"params": run.parameters, "released": released}, **counts)
            history.record_run(session, record)
            released["history_row_written"] = True
    return released, record


def _counts_of(session: Session, flow_run_id: str, before: RunAccount, released: dict[str, Any]) -> dict[str, int]:
    """The CRASHED row's counts: what the dead run had done, from the durable records it left.

    - Profile entries it finished name it (``claimed_by``, written with the batch's settlement),
      and so do those its release just adopted (``before``: its own; now: with the adopted).
      API calls: one per request it marked sent on the entries it finished, plus the calls
      its release billed (answers adopted, requests sent whose answer was lost); retries of
      one entry are not recorded, so this is a lower bound. Entries it deferred are PENDING
      again without a claimant: not counted.
    - Brand answers are committed one by one under its job runs (``flow_run_id``).
    - Crypto and Riot runs leave nothing that names their run: their counts stay 0.
    """
    after = entries.account_of_run(session, flow_run_id)
    answers = brands_repo.answers_of_flow_run(session, flow_run_id)
    completed = after.completed + answers[AnswerStatus.COMPLETED.value]
    failed = after.failed + answers[AnswerStatus.FAILED.value]
    return {"total_processed": completed + failed + answers[AnswerStatus.DEFERRED.value],
            "successful_count": completed, "failed_count": failed,
            "items_created": after.created + answers[AnswerStatus.COMPLETED.value], "items_updated": after.updated,
            "api_calls_made": before.requested + int(released.get("billable_calls_recovered", 0))
            + answers["api_calls"]}
