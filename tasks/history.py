"""Record a finished run: the ``job_execution_history`` row and a Prefect artifact."""

from __future__ import annotations

import uuid

from prefect.artifacts import TableArtifact
from tenacity import retry, stop_after_delay, wait_exponential_jitter

from core.db import session_scope
from core.runs import history
from core.runs.errors import ItemError
from core.runs.history import RunRecord
from core.runs.result import JobResult
from tasks._common import db_url, ride_out_db, run_logger


def _insert(record: RunRecord) -> int:
    with session_scope(db_url()) as session:
        return history.record_run(session, record)


async def record_history(record: RunRecord) -> int:
    """Insert the run's history row; returns its id. Not a Prefect task on purpose: the row is
    the record of the run, so writing it needs the database alone (an unreachable Prefect API
    must not lose it), and it rides out a database outage like every database step."""
    return await ride_out_db(_insert, record, what=f"the history row of {record.job_name}")


async def publish_job_result(result: JobResult, errors: list[ItemError] | None = None, *,
                             flow_run_id: uuid.UUID | None = None) -> bool:
    """Attach the JobResult (and per-item errors) to the flow run as a table artifact, keyed by
    the job, so the UI's Artifacts page shows its history across runs; returns whether it was
    published. Not a task: created in the flow's context it belongs to the flow run itself (its
    Artifacts tab), not to a task run. ``flow_run_id``: another run's (filled in later,
    ``tasks.followups``)."""
    rows = result.table()
    rows += [{"metric": f"error[{e['item']}]", "value": e["error"]}
             for e in (errors or [])[:50]]
    try:
        await _create_table_artifact(result, rows, flow_run_id)
    except Exception as exc:  # noqa: BLE001 - the row and the e-mail are the record; the artifact is a view of it
        run_logger().warning("JobResult artifact of %s not published (the history row has it; a later run"
                             " publishes it): %s: %s", result.job_name, type(exc).__name__, exc)
        return False
    return True


@retry(stop=stop_after_delay(30), wait=wait_exponential_jitter(multiplier=1, max=8), reraise=True)
async def _create_table_artifact(result: JobResult, rows: list[dict[str, object]],
                                 flow_run_id: uuid.UUID | None = None) -> None:
    """Prefect's API may be down for a while as a run ends: retried for up to 30 s."""
    await TableArtifact(
        key=result.job_name.replace("_", "-"),
        table=rows,
        description=f"{result.job_name}: {result.status} in {result.duration_ms} ms",
        flow_run_id=flow_run_id,
    ).acreate()
