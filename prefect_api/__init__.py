"""The one home of calls to Prefect's API: deployment schedules, global concurrency limits,
triggering, and the read side of the operations API (next runs, crashed runs, run URLs);
the automations that notice and release dead runs are in ``prefect_api.automations``.

Used by the flows (limits), the operations/admin API and the deploy scripts (schedules).

Schedules are identified by slug, so applying the same row twice updates rather than
duplicates, and the Prefect UI shows each one with its own parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from prefect import Flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import (
    DeploymentUpdate,
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    TaskRunFilter,
    TaskRunFilterId,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import SCHEDULE_TYPES, CronSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from core.cron import fires_at

logger = logging.getLogger("jobpipes.schedules")


def _schedules(schedule: CronSchedule, active: bool) -> list[tuple[SCHEDULE_TYPES, bool]]:
    return [(schedule, active)]


async def set_primary_schedule(client: PrefectClient, deployment: uuid.UUID, *, cron: str, timezone: str,
                               active: bool) -> None:
    """The deployment's first schedule := ``cron``/``timezone``/``active`` (created if it has none)."""
    schedule = CronSchedule(cron=cron, timezone=timezone)
    existing = await client.read_deployment_schedules(deployment)
    if existing:
        await client.update_deployment_schedule(deployment, existing[0].id, schedule=schedule, active=active)
        await _settle(client, StaleRuns(deployment, existing[0].id, cron, timezone, active))
    else:
        await client.create_deployment_schedules(deployment, _schedules(schedule, active))


@dataclass(frozen=True)
class StaleRuns:
    """What a changed schedule now fires; runs of its old self that Prefect's scheduler
    inserted after the change are stale.

    Prefect deletes a deployment's future auto-scheduled runs when one of its schedules
    changes, but its scheduler reads the schedules and inserts their runs in two separate
    transactions: a pass that read the old schedule just before the change inserts the old
    schedule's runs just after Prefect's delete (seen on the local server: a job switched
    from every two minutes to once a day still fired at the next even minute)."""

    deployment: uuid.UUID
    schedule: uuid.UUID
    cron: str
    timezone: str
    active: bool

    def stale(self, run: FlowRun) -> bool:
        at = run.expected_start_time
        return (run.auto_scheduled and _schedule_of(run) == self.schedule and at is not None
                and (not self.active or not fires_at(self.cron, self.timezone, at)))


SETTLE_AFTER_SECONDS = (1.0, 3.0, 10.0, 30.0)  # the scheduler's insert lands within seconds of its read
_settling: dict[uuid.UUID, asyncio.Task[None]] = {}  # schedule id -> its later sweeps


async def drop_stale_runs(client: PrefectClient, changed: StaleRuns, max_runs: int = 2000) -> int:
    """Delete the changed schedule's stale runs still waiting (state *Scheduled*, not yet
    due: as Prefect's own delete, Late ones are kept); returns how many."""
    stale: list[uuid.UUID] = []
    for offset in range(0, max_runs, 200):
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[changed.deployment])),
            flow_run_filter=_scheduled_named("Scheduled"), sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200, offset=offset)
        stale += [r.id for r in runs if r.run_count == 0 and changed.stale(r)]
        if len(runs) < 200:
            break
    for run_id in stale:
        with contextlib.suppress(ObjectNotFound):  # started or deleted meanwhile
            await client.delete_flow_run(run_id)
    if stale:
        logger.warning("deployment %s: dropped %d run(s) of schedule %s that its cron %r (%s) does not fire%s",
                       changed.deployment, len(stale), changed.schedule, changed.cron, changed.timezone,
                       "" if changed.active else " (inactive)")
    return len(stale)


async def _as_now(client: PrefectClient, deployment: uuid.UUID, schedule: uuid.UUID) -> StaleRuns | None:
    """The schedule as Prefect holds it now (None: removed, or no longer a cron)."""
    for current in await client.read_deployment_schedules(deployment):
        if current.id == schedule and isinstance(current.schedule, CronSchedule):
            return StaleRuns(deployment, schedule, current.schedule.cron, current.schedule.timezone or "UTC",
                             current.active)
    return None


async def _settle(client: PrefectClient, changed: StaleRuns) -> None:
    """Drop stale runs now, and again a few times over the next half minute from a task of
    this process (a long-lived one, the operations API, sees them all; a CLI call that
    exits first keeps the first sweep). Each later sweep reads the schedule again, so it
    judges runs by the newest change, whoever made it; a newer change here replaces the
    older one's sweeps."""
    await drop_stale_runs(client, changed)

    async def later() -> None:
        waited = 0.0
        for at in SETTLE_AFTER_SECONDS:
            await asyncio.sleep(at - waited)
            waited = at
            try:
                async with get_client() as fresh:
                    now = await _as_now(fresh, changed.deployment, changed.schedule)
                    if now is None:
                        return
                    await drop_stale_runs(fresh, now)
            except Exception:  # noqa: BLE001 - the next sweep, or the next change, tries again
                continue

    if (older := _settling.pop(changed.schedule, None)) is not None:
        with contextlib.suppress(RuntimeError):  # its loop (another thread's, maybe) is closed
            older.get_loop().call_soon_threadsafe(older.cancel)
    task = asyncio.get_running_loop().create_task(later())
    _settling[changed.schedule] = task

    def forget(done: asyncio.Task[None]) -> None:
        if _settling.get(changed.schedule) is done:
            del _settling[changed.schedule]
    task.add_done_callback(forget)


async def deployment_id(client: PrefectClient, flow: Flow[..., Any], name: str, *,
                        tags: list[str] | None = None, concurrency_limit: int | None = None) -> uuid.UUID:
    """The id of ``<flow name>/<name>``; registered from code (no work pool) when missing.

    Deployed normally with ``prefect deploy`` from prefect.yaml, where a work pool runs it;
    this fallback keeps schedules manageable on a bare API (tests, ``deployments.serve``).
    """
    try:
        return (await client.read_deployment_by_name(f"{flow.name}/{name}")).id
    except ObjectNotFound:
        deployment = await flow.ato_deployment(name=name, tags=tags or ["jobpipes"],
                                               concurrency_limit=concurrency_limit)
        return await deployment.aapply()


async def apply_schedule(client: PrefectClient, deployment: uuid.UUID, slug: str, *, cron: str, timezone: str,
                         active: bool, parameters: dict[str, Any]) -> uuid.UUID:
    """Create or update the deployment schedule ``slug``; returns its id."""
    existing = {s.slug: s for s in await client.read_deployment_schedules(deployment)}
    schedule = CronSchedule(cron=cron, timezone=timezone)
    current = existing.get(slug)
    if current is None:
        [created] = await client.create_deployment_schedules(
            deployment, _schedules(schedule, active), parameters=parameters, slug=slug)
        return created.id
    await client.update_deployment_schedule(deployment, current.id, schedule=schedule, active=active,
                                            parameters=parameters)
    await _settle(client, StaleRuns(deployment, current.id, cron, timezone, active))
    return current.id


async def remove_schedule(client: PrefectClient, deployment: uuid.UUID, slug: str) -> bool:
    for schedule in await client.read_deployment_schedules(deployment):
        if schedule.slug == slug:
            await client.delete_deployment_schedule(deployment, schedule.id)
            return True
    return False


async def read_schedule(client: PrefectClient, deployment: uuid.UUID, slug: str) -> Any | None:
    return next((s for s in await client.read_deployment_schedules(deployment) if s.slug == slug), None)


async def ensure_concurrency_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit ``name`` or set its limit; idempotent."""
    async with get_client() as client:
        try:
            current = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            except ObjectAlreadyExists:
                pass
            return
        if current.limit != limit:
            await client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit))


@contextlib.asynccontextmanager
async def occupy_slots(names: list[str], timeout: float) -> AsyncIterator[None]:
    """One slot of each global concurrency limit in ``names`` for the block (waiting at most
    ``timeout`` s). A lost lease (Prefect briefly unreachable) does not cancel the block."""
    async with concurrency(names, occupy=1, strict=True, timeout_seconds=timeout,
                           raise_on_lease_renewal_failure=False):
        yield


def deployment_name() -> str | None:
    """``flow/deployment`` of the current flow run, or None when it runs outside a deployment.

    A flow run that is no deployment's (a plain call from a script, a notebook, a test) is
    told from its own context: ``prefect.runtime.deployment`` would read the flow run back
    from the API on a second event-loop thread first (~0.2 s of a fresh process's start)."""
    from prefect.context import FlowRunContext, _deployment_id
    from prefect.runtime import deployment, flow_run

    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None and ctx.flow_run.deployment_id is None \
            and _deployment_id.get() is None:  # a subflow of a deployment's run inherits it
        return None
    name = deployment.get_name()
    return f"{flow_run.get_flow_name()}/{name}" if name else None


async def trigger_deployment(name: str, parameters: dict[str, Any], *, tags: list[str]) -> FlowRun:
    """Create a flow run of deployment ``name`` (``flow/deployment``) for a worker; returns at once."""
    # Imported here: most flow processes never trigger a deployment.
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name, parameters=parameters, timeout=0, tags=tags)
    return cast(FlowRun, await flow_run if inspect.isawaitable(flow_run) else flow_run)


# --- read side, for the operations API (deployments.control) -------------------------------

ACTIVE_STATES = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


async def read_deployment_or_none(client: PrefectClient, name: str) -> DeploymentResponse | None:
    """``flow/deployment`` with its ``paused`` flag, schedules and concurrency limit; None if missing."""
    try:
        return await client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def deployment_concurrency(deployment: DeploymentResponse) -> int | None:
    """The deployment's concurrency limit (Prefect keeps it as a global concurrency limit)."""
    limit = deployment.global_concurrency_limit
    return limit.limit if limit is not None else None


async def update_deployment(client: PrefectClient, deployment: uuid.UUID, *,
                            parameters: dict[str, Any] | None = None, paused: bool | None = None) -> None:
    """Set the default parameters of the deployment's runs (scheduled ones included) and/or
    its ``paused`` flag (the Prefect UI's pause/resume); None leaves a field as it is."""
    fields: dict[str, Any] = {}
    if parameters is not None:
        fields["parameters"] = parameters
    if paused is not None:
        fields["paused"] = paused
    if fields:
        await client.update_deployment(deployment, DeploymentUpdate(**fields))


async def count_active_runs(client: PrefectClient, deployment: uuid.UUID) -> int:
    """Flow runs of the deployment that hold a concurrency slot (pending, running, cancelling)."""
    return await client.count_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATES))))


def _scheduled_named(name: str) -> FlowRunFilter:
    return FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]),
                                                  name=FlowRunFilterStateName(any_=[name])))


async def next_scheduled_runs(client: PrefectClient, deployments: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """The earliest run in state *Scheduled* of each deployment: the next run Prefect's
    scheduler has created (Late runs and retries excluded). A deployment without one is left
    out: its schedule will not fire until the scheduler creates a run."""

    async def first(deployment: uuid.UUID) -> tuple[uuid.UUID, datetime | None]:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])),
            flow_run_filter=_scheduled_named("Scheduled"), sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=1)
        return deployment, runs[0].expected_start_time if runs else None

    found = await asyncio.gather(*(first(d) for d in deployments))
    return {dep: at for dep, at in found if at is not None}


async def next_runs_by_schedule(client: PrefectClient, deployment: uuid.UUID, schedules: set[uuid.UUID],
                                max_runs: int = 2000) -> dict[uuid.UUID, datetime]:
    """Schedule id -> its earliest run in state *Scheduled*, for a deployment with many schedules
    (the brand and job-queue ones). The scheduler names each run's schedule in its idempotency
    key (``scheduled <deployment> <schedule> <date>``); pages are read until every schedule of
    ``schedules`` is found or ``max_runs`` were read."""
    first: dict[uuid.UUID, datetime] = {}
    for offset in range(0, max_runs, 200):
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])),
            flow_run_filter=_scheduled_named("Scheduled"), sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200, offset=offset)
        for run in runs:
            schedule = _schedule_of(run)
            if schedule is not None and run.expected_start_time:
                first.setdefault(schedule, run.expected_start_time)
        if len(runs) < 200 or schedules <= set(first):
            break
    return first


@dataclass(frozen=True)
class LateRun:
    deployment_id: uuid.UUID
    schedule_id: uuid.UUID | None  # from the scheduler's idempotency key; None for a run made by hand
    expected_start: datetime


def _schedule_of(run: FlowRun) -> uuid.UUID | None:
    parts = (run.idempotency_key or "").split()
    if len(parts) >= 3 and parts[0] == "scheduled":
        try:
            return uuid.UUID(parts[2])
        except ValueError:
            return None
    return None


async def late_runs(client: PrefectClient, deployments: list[uuid.UUID]) -> list[LateRun]:
    """Runs in state *Late* (scheduled, never started) of these deployments, oldest first."""
    if not deployments:
        return []
    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployments)),
        flow_run_filter=_scheduled_named("Late"), sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=200)
    return [LateRun(run.deployment_id, _schedule_of(run), run.expected_start_time)
            for run in runs if run.deployment_id and run.expected_start_time]


async def crashed_runs(client: PrefectClient, deployments: list[uuid.UUID], since: datetime) -> list[FlowRun]:
    """CRASHED flow runs of these deployments started after ``since`` (they write no history row)."""
    if not deployments:
        return []
    return await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployments)),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
            start_time=FlowRunFilterStartTime(after_=since)),
        limit=200)


async def run_state_types(flow_runs: list[str | None], task_runs: list[str | None]
                          ) -> tuple[dict[str, str], dict[str, str]]:
    """State types (``"CRASHED"``...) of flow runs and task runs, by run id (Nones skipped)."""
    flow_ids = list({uuid.UUID(i) for i in flow_runs if i})
    task_ids = list({uuid.UUID(i) for i in task_runs if i})
    async with get_client() as client:
        flows = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_ids))) \
            if flow_ids else []
        tasks = await client.read_task_runs(task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=task_ids))) \
            if task_ids else []
    return ({str(r.id): r.state_type.value for r in flows if r.state_type},
            {str(r.id): r.state_type.value for r in tasks if r.state_type})


async def read_flow_run(client: PrefectClient, flow_run: uuid.UUID) -> FlowRun:
    return await client.read_flow_run(flow_run)


async def wait_for_flow_run(flow_run: uuid.UUID, timeout: float, poll: float = 0.5) -> FlowRun:
    """The flow run once final, or as it is after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(flow_run)
            if (run.state and run.state.is_final()) or asyncio.get_running_loop().time() >= deadline:
                return run
            await asyncio.sleep(poll)


def flow_run_url(flow_run: Any) -> str | None:
    """The flow run's page in the Prefect UI (None when no API URL is configured)."""
    ui = PREFECT_UI_URL.value()
    if not ui:
        api = PREFECT_API_URL.value()
        ui = api[: -len("/api")] if api and api.endswith("/api") else None
    return f"{ui.rstrip('/')}/runs/flow-run/{flow_run}" if ui else None
