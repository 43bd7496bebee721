"""The application job queue's jobs (seed 002): list, show, cancel, retry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from deployments.control import queue

router = APIRouter(prefix="/api/v1/queue/jobs", tags=["job queue (seed 002)"])


@router.get("", summary="Job-queue jobs, newest first, paged (filter by status, job type, since)")
async def list_jobs(status: Annotated[str | None, Query(max_length=20)] = None,
                    job_type: Annotated[str | None, Query(max_length=200)] = None,
                    since: datetime | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    return queue.list_jobs(status=status, job_type=job_type, since=since, limit=limit, offset=offset)


@router.get("/{job_id}", summary="One job with its data, progress, error and Prefect run")
async def get_job(job_id: str) -> dict[str, Any]:
    return queue.get(job_id)


@router.post("/{job_id}/cancel", summary="Cancel a Pending job, or ask a Running one to stop (its handler sees it)")
async def cancel_job(job_id: str) -> dict[str, Any]:
    return queue.cancel(job_id)


@router.post("/{job_id}/retry", summary="A Failed or Cancelled job back to Pending (409 otherwise)")
async def retry_job(job_id: str) -> dict[str, Any]:
    return queue.retry(job_id)
