"""Record a finished run: the ``job_execution_history`` row and a Prefect artifact."""

from __future__ import annotations

from prefect.artifacts import acreate_table_artifact

from core.db import session_scope
from core.runs import history
from core.runs.errors import ItemError
from core.runs.history import RunRecord
from core.runs.result import JobResult
from tasks._common import db_task, db_url


@db_task
async def record_history(record: RunRecord) -> int:
    """Insert the run's history row; returns its id."""
    with session_scope(db_url()) as session:
        return history.record_run(session, record)


async def publish_job_result(result: JobResult, errors: list[ItemError] | None = None) -> None:
    """Attach the JobResult (and per-item errors) to the flow run as a table artifact, keyed by
    the job, so the UI's Artifacts page shows its history across runs. Not a task: created in
    the flow's context it belongs to the flow run itself (its Artifacts tab), not to a task run."""
    rows = result.table()
    rows += [{"metric": f"error[{e['item']}]", "value": e["error"]}
             for e in (errors or [])[:50]]
    await acreate_table_artifact(
        key=result.job_name.replace("_", "-"),
        table=rows,
        description=f"{result.job_name}: {result.status} in {result.duration_ms} ms",
    )
