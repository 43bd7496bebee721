"""When a Running job is orphaned: liveness rules, independent of which worker claimed it.

A job is orphaned when nothing shows it is alive: its heartbeat (sent from a thread of the
process that runs it, every ``heartbeatSeconds``) is older than ``stale_after``, or Prefect
says the run executing it has ended (the task run failed, crashed or was cancelled, or the
worker session's flow run is over) while the row still says Running. Worker names play no
part: a pod restarted under a new name recovers its predecessor's jobs the same way.
"""

from __future__ import annotations

from datetime import timedelta

FINAL_FLOW_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
DEAD_TASK_STATES = frozenset({"FAILED", "CANCELLED", "CRASHED"})


def stale_after(*, heartbeat_seconds: float, missed_heartbeats: int, threshold: timedelta) -> timedelta:
    """How old a heartbeat may get: ``missed_heartbeats`` periods, at most the seed's threshold."""
    return min(timedelta(seconds=heartbeat_seconds * missed_heartbeats), threshold)


def dead_run_reason(flow_state: str | None, task_state: str | None) -> str | None:
    """Why a Running job's Prefect run shows it is dead, or None (alive, or unknown).

    A COMPLETED task run means the handler returned: never re-run it on the flow's account.
    """
    if task_state == "COMPLETED":
        return None
    if task_state in DEAD_TASK_STATES:
        return f"its Prefect task run is {task_state}"
    if flow_state in FINAL_FLOW_STATES:
        return f"its Prefect flow run is {flow_state} while the job is Running"
    return None
