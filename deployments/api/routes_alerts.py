"""Alarms when a schedule does not fire: the check Prefect's alert automations call, and the record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from deployments.control import alarms

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.post("/check", summary="Check every job's alarms now; record and e-mail the new ones")
async def check(payload: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
    trigger = str((payload or {}).get("trigger", "manual"))[:100]
    return await alarms.check(trigger)


@router.get("", summary="Recorded alarms, newest first (open ones only with ?open=true)")
async def list_alerts(open: bool = False, job_id: Annotated[str | None, Query(max_length=300)] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return alarms.list_alerts(open_only=open, job_id=job_id, limit=limit)
