"""Data behind the page's trends charts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from core.errors import ConfigError
from core.profiles.quota import PERIOD_FORMAT
from deployments.control import trends

router = APIRouter(prefix="/api/v1/trends", tags=["trends"])
Days = Annotated[int, Query(ge=1, le=366)]


@router.get("/runs", summary="Per job: time, duration and status of every run of the last `days` days")
async def runs(days: Days = 7) -> dict[str, Any]:
    return trends.runs(days)


@router.get("/quota", summary="RapidAPI quota burn this month and the day it runs out at the current rate")
async def quota(period: Annotated[str | None, Query(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\dZ$",
        description="a period's start as the ledger names it, e.g. 2026-01-15T00:00Z")] = None) -> dict[str, Any]:
    if period is not None:
        try:
            datetime.strptime(period, PERIOD_FORMAT)
        except ValueError:
            raise ConfigError(f"period: {period!r} is not a date") from None
        if not "2000" <= period[:4] <= "2999":
            raise ConfigError(f"period: {period!r} is out of range")
    return trends.quota(period)


@router.get("/brand-scores", summary="Visibility, share of voice, sentiment per run, brand and competitors")
async def brand_scores(brand_id: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    return trends.brand_scores(brand_id, limit)


@router.get("/coin-prices", summary="USD prices of the tracked coins")
async def coin_prices(days: Days = 7, symbols: Annotated[int, Query(ge=1, le=50)] = 8) -> dict[str, Any]:
    return trends.coin_prices(days, symbols)


@router.get("/brands", summary="Every brand (for the page's customer/brand pickers)")
async def brands() -> list[dict[str, Any]]:
    return trends.brands()
