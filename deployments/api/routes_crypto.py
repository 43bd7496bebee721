"""Seed 004's trigger routes, as the seed calls them:

    curl -X POST .../api/v1/jobs/collect-top-coins -H "Authorization: Bearer $TOKEN" \
         -H "Content-Type: application/json" -d '{"limit": 10}'

Each starts a flow run of the job's deployment and, by default, waits for it and answers
with its JobResult (200); with ``?wait=false``, or when the run is not finished after the
app's wait limit, it answers 202 with the flow run id and its Prefect UI URL.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict

from core.crypto.settings import CryptoJobConfig
from deployments.control.catalog import FIXED
from deployments.control.runs import job_result_for
from deployments.control.trigger import trigger
from prefect_api import flow_run_url, wait_for_flow_run

router = APIRouter(prefix="/api/v1/jobs", tags=["crypto (seed 004)"])


class LimitBody(CryptoJobConfig):
    """``{"limit": N}``: coins/assets this run (bounds: ``core.crypto.settings.JobLimit``); none: the job's config."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limit": 10}]})


async def _run(request: Request, job_id: str, body: LimitBody | None, wait: bool) -> Any:
    params = {"limit": body.limit} if body and body.limit is not None else {}
    started = await trigger(FIXED[job_id], params)
    if not wait:
        return JSONResponse(started, status_code=202)
    run = await wait_for_flow_run(uuid.UUID(started["flow_run_id"]), request.app.state.run_wait_seconds)
    if not (run.state and run.state.is_final()):
        return JSONResponse(started | {"state": run.state_name,
                                       "detail": "still running; GET /api/v1/jobs/{id}/executions"}, status_code=202)
    result = job_result_for(str(run.id))
    if result is None:  # crashed or cancelled before it recorded anything
        return {"success": False, "job_name": job_id.replace("-", "_"), "status": (run.state_name or "").upper(),
                "error": run.state.message if run.state else None, "flow_run_id": str(run.id),
                "flow_run_url": flow_run_url(run.id)}
    return result.model_dump(mode="json") | {"flow_run_url": flow_run_url(run.id)}


@router.post("/collect-top-coins", summary="Run top-coins-collection; its JobResult (or 202 with ?wait=false)")
async def collect_top_coins(request: Request, body: LimitBody | None = None, wait: bool = True) -> Any:
    return await _run(request, "top-coins-collection", body, wait)


@router.post("/collect-prices", summary="Run price-collection; its JobResult (or 202 with ?wait=false)")
async def collect_prices(request: Request, body: LimitBody | None = None, wait: bool = True) -> Any:
    return await _run(request, "price-collection", body, wait)


@router.post("/collect-contract-addresses",
             summary="Run contract-addresses-collection; its JobResult (or 202 with ?wait=false)")
async def collect_contract_addresses(request: Request, body: LimitBody | None = None, wait: bool = True) -> Any:
    return await _run(request, "contract-addresses-collection", body, wait)
