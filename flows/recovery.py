"""``release-crashed-run``: what a dead run held is released at once (run by an automation)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.spec import JobSpec
from prefect_api.automations import describe_run
from tasks.followups import fill_in_followups
from tasks.recovery import release_run
from tasks.runs import announce

_DEAD_STATES = {"CRASHED", "FAILED", "CANCELLED"}


@flow(name="release-crashed-run")
async def release_crashed_run(flow_run_id: str) -> dict[str, Any]:
    """Release the entries, quota and job rows of a dead flow run and record it CRASHED.

    ``flow_run_id`` may be the bare id or the event resource id ``prefect.flow-run.<id>``.
    A run that is not final is left alone: its process may still be working.
    """
    run = await describe_run(flow_run_id)
    if run.state not in _DEAD_STATES:
        get_run_logger().warning("flow run %s is %s, not ended: nothing released", run.flow_run_id, run.state)
        return {"released": False, "state": run.state}
    released, crashed = await release_run(run)
    get_run_logger().info("released what %s run %s held: %s", run.flow_name, run.flow_run_id, released)
    if crashed is not None:  # CRASHED is a problem: e-mailed under the crashed job's policy
        await announce(crashed, None)
    followups = await fill_in_followups()  # what outages left out of earlier runs
    return {"released": True, "state": run.state, **released, "followups": followups}


JOBS = (
    JobSpec(release_crashed_run, "ops", "Release a crashed run",
            "Release what a crashed run held (entries, quota, job runs) and write its CRASHED history row; "
            "run by the release automation.",
            tags=("jobpipes-ops",),  # not "jobpipes": a crashed release must not start another release
            ),
)
