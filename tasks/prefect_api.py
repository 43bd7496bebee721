"""The one home of calls to Prefect's API: deployment schedules, global concurrency limits.

Used by the flows (limits), the admin API and the deploy scripts (schedules).

Schedules are identified by slug, so applying the same row twice updates rather than
duplicates, and the Prefect UI shows each one with its own parameters.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any, cast

from prefect import Flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.schedules import SCHEDULE_TYPES, CronSchedule
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound


def _schedules(schedule: CronSchedule, active: bool) -> list[tuple[SCHEDULE_TYPES, bool]]:
    return [(schedule, active)]


async def set_primary_schedule(client: PrefectClient, deployment: uuid.UUID, *, cron: str, timezone: str,
                               active: bool) -> None:
    """The deployment's first schedule := ``cron``/``timezone``/``active`` (created if it has none)."""
    schedule = CronSchedule(cron=cron, timezone=timezone)
    existing = await client.read_deployment_schedules(deployment)
    if existing:
        await client.update_deployment_schedule(deployment, existing[0].id, schedule=schedule, active=active)
    else:
        await client.create_deployment_schedules(deployment, _schedules(schedule, active))


async def deployment_id(client: PrefectClient, flow: Flow[..., Any], name: str) -> uuid.UUID:
    """The id of ``<flow name>/<name>``; registered from code (no work pool) when missing.

    Deployed normally with ``prefect deploy`` from prefect.yaml, where a work pool runs it;
    this fallback keeps schedules manageable on a bare API (tests, ``deployments.serve``).
    """
    try:
        return (await client.read_deployment_by_name(f"{flow.name}/{name}")).id
    except ObjectNotFound:
        deployment = await flow.ato_deployment(name=name, tags=["jobpipes"])
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


async def trigger_deployment(name: str, parameters: dict[str, Any], *, tags: list[str]) -> FlowRun:
    """Create a flow run of deployment ``name`` (``flow/deployment``) for a worker; returns at once."""
    flow_run = run_deployment(name, parameters=parameters, timeout=0, tags=tags)
    return cast(FlowRun, await flow_run if inspect.isawaitable(flow_run) else flow_run)
