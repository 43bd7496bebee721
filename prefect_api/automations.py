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

A schedule that does not fire is noticed by Prefect's server itself (no worker needed): the
*watchdog* automation fires when no alarm check has run for ``alerts.checkEverySeconds`` and
calls the operations API's ``POST /api/v1/alerts/check`` through a Webhook block
(``jobpipes-alerts``, its bearer token kept as a secret), which finds runs Late beyond
``alerts.lateAfterSeconds``, active schedules without a scheduled run and overdue jobs, and
records and e-mails them (``deployments.control.alarms``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.events.actions import CallWebhook, ChangeFlowRunState, RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound
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


ALERT_BLOCK = "jobpipes-alerts"
WATCHDOG_AUTOMATION = "jobpipes: alarm watchdog"
LEGACY_ALERT_AUTOMATIONS = ("jobpipes: alarm when a run stays late",)
CHECKED_EVENT, CHECK_RESOURCE = "jobpipes.alerts.checked", "jobpipes.alerts"


def watchdog_automation(block_id: uuid.UUID, every: timedelta) -> AutomationCore:
    """No alarm check for ``every`` -> one now (each check emits ``jobpipes.alerts.checked``).

    Why not a trigger on ``prefect.flow-run.Late``: Prefect 3.8.8's scheduler inserts its runs
    without a *Scheduled* event, and the *Late* event names that missing event as the one it
    follows, so the triggers service holds it back for 15 minutes (``PRECEDING_EVENT_LOOKBACK``)
    before any automation sees it (seen here: no Late-event automation fired within minutes).
    The check reads Late runs from the API instead, so an alarm comes within ``every`` of its
    threshold."""
    return AutomationCore(
        name=WATCHDOG_AUTOMATION,
        description=f"Asks the operations API to check every job's alarms when no check ran for "
                    f"{every.total_seconds():g} s (late runs, no scheduled run, overdue jobs).",
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": CHECK_RESOURCE}), expect={CHECKED_EVENT},
            posture=Posture.Proactive, threshold=1, within=every),
        actions=[CallWebhook(block_document_id=block_id, payload='{"trigger": "watchdog"}')],
    )


async def ensure_alert_automations(webhook_url: str, token: str, *, every: timedelta) -> list[str]:
    """The webhook block and the watchdog automation, created or updated (idempotent)."""
    from prefect.blocks.webhook import Webhook
    from prefect.types import SecretDict
    from pydantic import SecretStr

    block = Webhook(method="POST", url=SecretStr(webhook_url), allow_private_urls=True,
                    headers=SecretDict({"Authorization": f"Bearer {token}", "Content-Type": "application/json"}))
    block_id = await block.asave(ALERT_BLOCK, overwrite=True)
    async with get_client() as client:
        await _apply(client, watchdog_automation(block_id, every))
        for name in LEGACY_ALERT_AUTOMATIONS:
            for old in await client.read_automations_by_name(name):
                await client.delete_automation(old.id)
    return [f"{WATCHDOG_AUTOMATION} (every {every.total_seconds():g} s) -> {webhook_url}"]


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
        try:
            deployment = await client.read_deployment_by_name(RELEASE_DEPLOYMENT)
        except ObjectNotFound:
            applied.append(f"{RELEASE_AUTOMATION}: not created: {RELEASE_DEPLOYMENT} is not deployed "
                           "(prefect deploy --all)")
            return applied
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
