"""Keep one schedule of a deployment in step with a row of ``scheduled_jobs``.

Schedules are identified by slug, so applying the same row twice updates rather than
duplicates, and the Prefect UI shows each one with its own parameters.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect import Flow
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound


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
            deployment, [(schedule, active)], parameters=parameters, slug=slug)
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
