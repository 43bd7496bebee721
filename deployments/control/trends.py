"""Data of the trends charts: runs and durations per job, the RapidAPI quota burn of the
month with the day it runs out at the current rate, brand scores over runs, coin prices."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.brands.models import BrandScoreAggregate, JobRun
from core.brands.schemas import parse_uuid
from core.crypto.models import Asset, AssetPrice
from core.db import session_scope
from core.db.types import utcnow
from core.profiles.job_configs import reset_schedule
from core.profiles.models import ApiQuota
from core.profiles.quota import PERIOD_FORMAT, period_window
from core.runs.models import JobExecutionHistory
from core.settings import get_settings
from deployments.control.catalog import FIXED_JOBS
from flows.profiles import PROVIDER, profile_fetcher
from tasks._common import db_url

_JOB_IDS = {job.history_name: job.id for job in FIXED_JOBS}


def runs(days: int) -> dict[str, Any]:
    """Per job: every run of the last ``days`` days (time, duration, status), oldest first."""
    since = utcnow() - timedelta(days=days)
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with session_scope(db_url()) as session:
        rows = session.execute(select(JobExecutionHistory.job_name, JobExecutionHistory.started_at,
                                      JobExecutionHistory.duration_ms, JobExecutionHistory.status)
                               .where(JobExecutionHistory.started_at >= since)
                               .order_by(JobExecutionHistory.started_at)).all()
    for name, started, duration, status in rows:
        series[_JOB_IDS.get(name, name)].append({"t": started.isoformat(), "duration_ms": duration,
                                                 "status": status})
    return {"days": days, "jobs": dict(series)}


def quota(period: str | None = None) -> dict[str, Any]:
    """The RapidAPI ledger of the current quota period (or of ``period``), the cumulative calls
    used per day (from each profile-fetcher run's ``quota_remaining``), the burn rate and the
    day the quota runs out. Periods follow ``cron.quotaResetSchedule`` (a plan renewing on
    the 15th runs from the 15th to the 14th), named by their start, ``2026-01-15T00:00Z``."""
    settings = get_settings()
    now = utcnow()
    with session_scope(db_url(settings)) as session:
        schedule, timezone = reset_schedule(session, settings.cron)
        moment = now if period is None else datetime.strptime(period, PERIOD_FORMAT).replace(tzinfo=UTC)
        start, end = period_window(moment, schedule=schedule, timezone=timezone)
        period = start.strftime(PERIOD_FORMAT)
        ledger = session.execute(select(ApiQuota).where(ApiQuota.provider == PROVIDER, ApiQuota.period == period)
                                 ).scalar_one_or_none()
        points = session.execute(select(JobExecutionHistory.started_at, JobExecutionHistory.quota_remaining)
                                 .where(JobExecutionHistory.job_name == profile_fetcher.name.replace("-", "_"),
                                        JobExecutionHistory.started_at >= start,
                                        JobExecutionHistory.started_at < end,
                                        JobExecutionHistory.quota_remaining.is_not(None))
                                 .order_by(JobExecutionHistory.started_at)).all()
        limit = ledger.monthly_limit if ledger else None
        used = ledger.calls_used if ledger else 0
    daily: dict[str, int] = {}
    for started, remaining in points:
        if limit is not None and remaining is not None:
            daily[started.date().isoformat()] = max(daily.get(started.date().isoformat(), 0), limit - remaining)
    elapsed_days = max((min(now, end) - start).total_seconds() / 86400, 1 / 24)
    rate = used / elapsed_days
    runs_out = None
    if limit is not None and rate > 0:
        runs_out = (start + timedelta(days=elapsed_days + max(limit - used, 0) / rate)).date().isoformat()
    last_day = (end - timedelta(seconds=1)).date().isoformat()
    return {"provider": PROVIDER, "period": period, "period_start": start.isoformat(), "period_end": end.isoformat(),
            "monthly_limit": limit, "used": used,
            "remaining": None if limit is None else max(limit - used, 0), "rate_per_day": round(rate, 2),
            "runs_out_on": runs_out, "month_ends_on": last_day,
            "runs_out_this_month": runs_out is not None and runs_out <= last_day,
            "daily": [{"date": d, "used": u} for d, u in sorted(daily.items())]}


def brand_scores(brand_id: Any = None, limit: int = 50) -> dict[str, Any]:
    """Per brand (own and competitors): visibility, share of voice and sentiment per scored run."""
    brand: uuid.UUID | None = parse_uuid(brand_id, "brand_id") if brand_id else None
    query = (select(BrandScoreAggregate, JobRun.started_at).join(JobRun, JobRun.id == BrandScoreAggregate.job_run_id)
             .order_by(BrandScoreAggregate.computed_at.desc()).limit(limit * 10))
    if brand is not None:
        query = query.where(BrandScoreAggregate.brand_id == brand)
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    own: set[str] = set()
    with session_scope(db_url()) as session:
        for score, started in reversed(session.execute(query).all()):
            if score.is_own_brand:
                own.add(score.brand_name)
            series[score.brand_name].append({
                "t": (started or score.computed_at).isoformat(), "job_run_id": str(score.job_run_id),
                "visibility": score.visibility, "share_of_voice": score.share_of_voice,
                "sentiment": score.average_sentiment, "average_position": score.average_position})
    return {"brand_id": str(brand) if brand else None, "own_brands": sorted(own),
            "brands": {name: points[-limit:] for name, points in series.items()}}


def coin_prices(days: int, symbols: int = 8) -> dict[str, Any]:
    """USD prices of the tracked coins (the ``symbols`` best ranked) over the last ``days`` days."""
    since = utcnow() - timedelta(days=days)
    with session_scope(db_url()) as session:
        assets = session.execute(select(Asset).where(Asset.is_tracked.is_(True))
                                 .order_by(Asset.market_cap_rank.asc().nulls_last(), Asset.id).limit(symbols)
                                 ).scalars().all()
        ids = {a.id: a.symbol.upper() for a in assets}
        rows = session.execute(select(AssetPrice.asset_id, AssetPrice.timestamp, AssetPrice.price_usd)
                               .where(AssetPrice.asset_id.in_(list(ids)), AssetPrice.timestamp >= since)
                               .order_by(AssetPrice.timestamp)).all() if ids else []
    series: dict[str, list[dict[str, Any]]] = {symbol: [] for symbol in ids.values()}
    for asset_id, ts, price in rows:
        series[ids[asset_id]].append({"t": ts.isoformat(), "price_usd": price})
    return {"days": days, "coins": series}


def brands() -> list[dict[str, Any]]:
    """Every brand (id, customer, name, competitors), for the page's pickers."""
    from core.brands.models import Brand

    with session_scope(db_url()) as session:
        return [{"id": str(b.id), "customer_id": str(b.customer_id), "name": b.name,
                 "competitors": list(b.competitors)}
                for b in session.execute(select(Brand).order_by(Brand.name)).scalars()]
