"""Dead runs noticed and cleaned up without a person: heartbeats, the zombie automation, and
the automation that hands every crashed run to ``release-crashed-run``.

A flow run whose process is SIGKILLed (OOM, a lost machine) stays Running in Prefect. Flow
runs send a heartbeat every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (deployments set 30
through their job variables); the *zombie* automation (Prefect's documented "detect zombie
flows") marks a run whose heartbeats stop for ``ZOMBIE_AFTER`` seconds Crashed, which frees its
deployment's concurrency slot. The *release* automation reacts to every Crashed run of a
``jobpipes`` deployment by running ``release-crashed-run`` with the run's id: its FETCHING
entries go back to PENDING, its quota reservation is given back, its job-run rows are closed,
and its CRASHED history row is written. Both automations are created idempotently by
``python -m deployments.deploy``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from pydantic import BaseModel

HEARTBEAT_SECONDS = 30
ZOMBIE_AFTER = timedelta(seconds=90)
ZOMBIE_AUTOMATION = "jobpipes: crash zombie flow runs"
RELEASE_AUTOMATION = "jobpipes: release crashed runs"
RELEASE_DEPLOYMENT = "release-crashed-run/release-crashed-run"
_FINAL_EVENTS = ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                 "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"]


class CrashedRun(BaseModel):
    """What Prefect knows of a run that ended without finishing its own bookkeeping."""

    flow_run_id: str
    flow_name: str
    state: str
    message: str
    parameters: dict[str, Any]
    started_at: datetime | None


def zombie_automation(within: timedelta = ZOMBIE_AFTER) -> AutomationCore:
    """No heartbeat (and no final state) for ``within`` after a heartbeat: the run is Crashed."""
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Marks flow runs Crashed when their heartbeats stop (their process died).",
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            after={"prefect.flow-run.heartbeat"}, expect=set(_FINAL_EVENTS),
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1, within=within),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"No heartbeat for {within.total_seconds():g} s: the process is gone.")],
    )


def release_automation(deployment_id: uuid.UUID) -> AutomationCore:
    """Every Crashed run of a ``jobpipes`` deployment -> a ``release-crashed-run`` flow run."""
    return AutomationCore(
        name=RELEASE_AUTOMATION,
        description="Releases what a crashed run held (entries, quota, job runs) and records it.",
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification({"prefect.resource.role": "tag",
                                                 "prefect.resource.id": "prefect.tag.jobpipes"}),
            expect={"prefect.flow-run.Crashed"}, posture=Posture.Reactive, threshold=1,
            within=timedelta(0)),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id,
                               parameters={"flow_run_id": "{{ event.resource.id }}"})],
    )


async def _apply(client: PrefectClient, automation: AutomationCore) -> uuid.UUID:
    existing = await client.read_automations_by_name(automation.name)
    if existing:
        await client.update_automation(existing[0].id, automation)
        for extra in existing[1:]:
            await client.delete_automation(extra.id)
        return existing[0].id
    return await client.create_automation(automation)


async def ensure_crash_automations(within: timedelta = ZOMBIE_AFTER) -> list[str]:
    """Create or update both automations (idempotent); returns what was applied."""
    async with get_client() as client:
        applied = [f"{ZOMBIE_AUTOMATION} ({within.total_seconds():g} s)"]
        await _apply(client, zombie_automation(within))
        deployment = await client.read_deployment_by_name(RELEASE_DEPLOYMENT)
        await _apply(client, release_automation(deployment.id))
        applied.append(f"{RELEASE_AUTOMATION} -> {RELEASE_DEPLOYMENT}")
    return applied


async def describe_run(flow_run_id: str) -> CrashedRun:
    """The flow run's name, state and parameters (``flow_run_id`` may be an event resource id)."""
    run_id = uuid.UUID(flow_run_id.removeprefix("prefect.flow-run."))
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        flow = await client.read_flow(run.flow_id)
    state = run.state
    return CrashedRun(flow_run_id=str(run_id), flow_name=flow.name,
                      state=state.type.value if state else "UNKNOWN",
                      message=(state.message if state and state.message else "") or "",
                      parameters=dict(run.parameters or {}), started_at=run.start_time)


ENDED_STATES = frozenset({"CRASHED", "FAILED", "CANCELLED", "COMPLETED"})
"""A run in one of these states holds nothing any more: whatever it still claims is released."""


async def run_states(flow_run_ids: list[str]) -> dict[str, str]:
    """The state type of each flow run Prefect knows (ids that are not flow runs are skipped)."""
    ids: list[uuid.UUID] = []
    for run_id in flow_run_ids:
        try:
            ids.append(uuid.UUID(run_id))
        except ValueError:
            continue
    if not ids:
        return {}
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return {str(r.id): r.state.type.value for r in runs if r.state is not None}
