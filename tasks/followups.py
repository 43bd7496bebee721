"""Filling in what an outage left out of earlier runs (issue 19 item 2).

A run's history row is written with the database alone; its table artifact needs Prefect's
API and its e-mail an SMTP server. When either is down past its retries, the row says so
(``artifact_pending``, ``email_pending``) and the next run of any job, or the
``release-crashed-run`` flow, makes them: the artifact on the run it belongs to, the e-mail as
it would have been sent. Best effort and bounded: a few runs at a time, never holding up the
run that fills them in."""

from __future__ import annotations

import uuid

from core.db import session_scope
from core.runs import history
from core.runs.result import JobResult
from tasks._common import db_url, ride_out_db, run_logger
from tasks.history import publish_job_result
from tasks.notify import notify_completion

BATCH = 20  # runs filled in per kind, per call
_BUDGET_S = 5.0  # a database outage here is not waited out long: the next run tries again


def mark_pending(row_id: int, what: str) -> None:
    with session_scope(db_url()) as session:
        history.mark_followup(session, row_id, what)


def _take(what: str) -> list[tuple[int, history.RunRecord]]:
    with session_scope(db_url()) as session:
        return [(row.id, history.record_of(row)) for row in history.take_followups(session, what, BATCH)]


async def fill_in_followups(*, artifacts: bool = True, emails: bool = True) -> dict[str, int]:
    """Make the pending artifacts and e-mails of earlier runs; returns how many of each."""
    made = {"artifacts": 0, "emails": 0}
    for what, wanted in (("artifact_pending", artifacts), ("email_pending", emails)):
        if not wanted:
            continue
        try:
            taken = await ride_out_db(_take, what, what="the runs' follow-ups", budget=_BUDGET_S)
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            run_logger().warning("follow-ups not read: %s: %s", type(exc).__name__, exc)
            continue
        for row_id, record in taken:
            try:
                if what == "artifact_pending":
                    ok = await publish_job_result(JobResult.from_record(record), record.metrics.get("errors"),
                                                  flow_run_id=uuid.UUID(record.flow_run_id) if record.flow_run_id else None)
                else:
                    await notify_completion(record)
                    ok = True
            except Exception as exc:  # noqa: BLE001 - put back below
                run_logger().warning("follow-up of run %s not made: %s: %s", record.flow_run_id, type(exc).__name__, exc)
                ok = False
            if ok:
                made["artifacts" if what == "artifact_pending" else "emails"] += 1
            else:
                await ride_out_db(mark_pending, row_id, what, what="a run's follow-up", budget=_BUDGET_S)
    if any(made.values()):
        run_logger().info("filled in what outages left out of earlier runs: %d artifacts, %d e-mails",
                          made["artifacts"], made["emails"])
    return made
