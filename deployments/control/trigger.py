"""Starting a job now: a flow run of its deployment, for a worker (or ``deployments.serve``).

Refused with ``JobConflict`` (409) when the job is inactive, or when its deployment already
has as many pending/running flow runs as its concurrency limit allows.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun

from core.errors import ConfigError
from deployments.control.catalog import FixedJob, Job, ScheduledRowJob
from deployments.control.configs import read_settings
from deployments.control.sync import apply_fixed, job_config
from prefect_api import (
    count_active_runs,
    deployment_concurrency,
    flow_run_url,
    read_deployment_or_none,
    trigger_deployment,
)


class JobConflict(Exception):
    """The job cannot start now (a 409)."""


def check_parameters(job: FixedJob, parameters: dict[str, Any]) -> None:
    """Every parameter known to the flow and of the right type; ConfigError naming it."""
    known = set(job.flow.parameters.properties)
    for key in parameters:
        if key not in known:
            raise ConfigError(f"parameters.{key}: unknown parameter of {job.id} "
                              f"(known: {', '.join(sorted(known)) or 'none'})")
    try:
        job.flow.validate_parameters(parameters)
    except Exception as exc:
        raise ConfigError(f"parameters: {exc}") from None


def run_view(job: Job, flow_run: FlowRun, parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"job_id": job.id, "flow_run_id": str(flow_run.id), "flow_run_url": flow_run_url(flow_run.id),
            "state": flow_run.state_name, "parameters": parameters, **extra}


async def trigger(job: Job, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    parameters = dict(parameters or {})
    if isinstance(job, FixedJob):
        return await _trigger_fixed(job, parameters)
    assert isinstance(job, ScheduledRowJob)
    if parameters:
        raise ConfigError(f"parameters: {job.id} runs with its scheduled job's parameters; "
                          "change them with PUT /api/v1/jobs/{id}/config")
    if not (await job_config(job))["active"]:
        raise JobConflict(f"job_id: {job.id} is inactive; activate it first")
    started = await job.kind.trigger(job)
    return {"job_id": job.id, "flow_run_id": started.flow_run_id, "flow_run_url": flow_run_url(started.flow_run_id),
            "state": started.state, "parameters": started.parameters, **started.extra}


async def _trigger_fixed(job: FixedJob, parameters: dict[str, Any]) -> dict[str, Any]:
    check_parameters(job, parameters)
    settings = read_settings([job])[job.id]
    if not settings.active:
        raise JobConflict(f"job_id: {job.id} is inactive; activate it with PUT /api/v1/jobs/{job.id}/config")
    async with get_client() as client:
        deployment = await read_deployment_or_none(client, job.deployment)
        if deployment is None:  # registered from code, with its row's schedule (no drift)
            await apply_fixed(client, job, settings)
            deployment = await read_deployment_or_none(client, job.deployment)
        assert deployment is not None
        limit = deployment_concurrency(deployment) or job.concurrency
        if limit is not None and await count_active_runs(client, deployment.id) >= limit:
            raise JobConflict(f"job_id: {job.id} is at its concurrency limit ({limit} run(s) pending or running)")
    flow_run = await trigger_deployment(job.deployment, parameters, tags=["jobpipes", "manual"])
    return run_view(job, flow_run, parameters)
