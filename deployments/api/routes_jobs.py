"""Seed 001's routes over every job of the five families, and each job's configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from deployments.control import catalog, overview, runs, sync, trigger

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class TriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict, examples=[{"limit": 10}])


class ConfigUpdate(BaseModel):
    """Only the fields given change; the rest stay as stored."""

    model_config = ConfigDict(extra="forbid")

    schedule: str | None = Field(None, max_length=100, examples=["*/30 * * * *"])
    timezone: str | None = Field(None, max_length=64, examples=["Europe/Paris"])
    active: bool | None = None
    config: dict[str, Any] | None = Field(None, examples=[{"limit": 50}])


def _job_view(job: catalog.Job) -> dict[str, Any]:
    return {"id": job.id, "family": job.family, "title": job.title, "deployment": job.deployment}


@router.get("", summary="Every job (id, family, title, deployment)")
async def list_jobs(family: str | None = None) -> list[dict[str, Any]]:
    return [_job_view(j) for j in catalog.all_jobs(family)]


@router.get("/status/overview", summary="Every job: settings, Prefect state and drift, next/last run, last 24 h")
async def status_overview(family: str | None = None) -> dict[str, Any]:
    return await overview.overview(family)


@router.get("/{job_id}/executions", summary="A job's runs, newest first, paged")
async def executions(job_id: str, status: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z_]+$")] = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    job = catalog.get_job(job_id)
    if isinstance(job, catalog.FixedJob):
        await runs.record_crashed()
    return runs.list_executions(job, status=status, since=since, until=until, limit=limit, offset=offset)


@router.post("/{job_id}/trigger", status_code=202,
             summary="Start a flow run of the job's deployment now (409 if inactive or at its limit)")
async def trigger_job(job_id: str, body: TriggerBody | None = None) -> dict[str, Any]:
    return await trigger.trigger(catalog.get_job(job_id), body.parameters if body else {})


@router.get("/{job_id}/config", summary="The job's schedule, timezone, active flag and config (its table row)")
async def get_config(job_id: str) -> dict[str, Any]:
    return await sync.job_config(catalog.get_job(job_id))


@router.put("/{job_id}/config", summary="Change schedule/timezone/active/config; applied to Prefect at once")
async def put_config(job_id: str, body: ConfigUpdate) -> dict[str, Any]:
    return await sync.change_config(catalog.get_job(job_id), **body.model_dump(exclude_unset=True))
