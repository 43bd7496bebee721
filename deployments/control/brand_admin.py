"""The seed-003 admin operations as Python functions (awaitable from notebooks, used by
the HTTP API in ``deployments.api.app``).

A brand's scheduled job is a row of ``scheduled_jobs`` (brand_id, customer_id, job_type,
metadata in ``job_data``, cron, timezone, active) and, in step with it, a schedule of the
``brand-job/brand-job`` deployment whose parameters are (brand_id, customer_id, job_type,
metadata, scheduled_job_id). The row is written and the Prefect schedule applied in one
go: if Prefect refuses, the row is rolled back, so the two never disagree.

Every bad input raises ConfigError whose message starts with the field's name; a missing
scheduled job, job run or brand raises UnknownIdError (a LookupError).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from prefect.client.orchestration import get_client
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, inspect, select
from sqlalchemy import update as sa_update

from core.brands import repo
from core.brands.models import Brand, JobRun, JobRunStatus
from core.brands.schemas import (
    UnknownIdError,
    parse_job_type,
    parse_metadata,
    parse_schedule,
    parse_uuid,
)
from core.cron import next_run
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.errors import ConfigError
from deployments.control.rows import History, RowKind, ScheduledRowJob, Triggered, duration_ms, iso
from flows.brands import BRAND_JOB_DEPLOYMENT, BRAND_JOB_FLOW, brand_job
from prefect_api import (
    apply_schedule,
    deployment_id,
    flow_run_url,
    read_schedule,
    remove_schedule,
    trigger_deployment,
)
from tasks._common import db_url


def _slug(job_id: uuid.UUID) -> str:
    return f"brand-job-{job_id}"


def _parameters(row: ScheduledJob) -> dict[str, Any]:
    return {"brand_id": str(row.brand_id), "customer_id": str(row.customer_id), "job_type": row.job_type,
            "metadata": dict(row.job_data), "scheduled_job_id": str(row.id)}


def job_title(brand_name: str | None, job_type: str, job_id: uuid.UUID) -> str:
    """What an operator calls the job: its brand and job type (the slug if the brand is gone)."""
    return f"{brand_name} · {job_type}" if brand_name else _slug(job_id)


def _brand_names(session: Any, brand_ids: set[uuid.UUID | None]) -> dict[uuid.UUID | None, str]:
    """Brand id -> its name, for the brands that exist."""
    wanted = [b for b in brand_ids if b is not None]
    if not wanted:
        return {}
    return {brand: name for brand, name in session.execute(select(Brand.id, Brand.name).where(Brand.id.in_(wanted)))}


def scheduled_job_view(row: ScheduledJob, prefect_schedule_id: Any = None,
                       brand_name: str | None = None) -> dict[str, Any]:
    return {"id": str(row.id), "title": job_title(brand_name, row.job_type, row.id), "brand_name": brand_name,
            "brand_id": str(row.brand_id), "customer_id": str(row.customer_id),
            "job_type": row.job_type, "cron_expression": row.cron_expression, "timezone": row.timezone,
            "is_active": row.is_enabled, "metadata": dict(row.job_data),
            "next_run_time": _iso(row.next_run_time) if row.is_enabled else None,
            "last_run_time": _iso(row.last_run_time), "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at), "deployment": BRAND_JOB_DEPLOYMENT,
            "prefect_schedule_id": str(prefect_schedule_id) if prefect_schedule_id else None}


def job_run_view(run: JobRun) -> dict[str, Any]:
    return {"id": str(run.id), "scheduled_job_id": str(run.scheduled_job_id) if run.scheduled_job_id else None,
            "brand_id": str(run.brand_id), "customer_id": str(run.customer_id), "job_type": run.job_type,
            "status": run.status, "metadata": run.metadata_json, "metrics": run.metrics,
            "error_message": run.error_message, "attempts": run.attempts, "flow_run_id": run.flow_run_id,
            "flow_run_url": flow_run_url(run.flow_run_id) if run.flow_run_id else None,
            "created_at": _iso(run.created_at), "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _brand_row(session: Any, brand_id: uuid.UUID, customer_id: uuid.UUID) -> str:
    """The brand's name, once the brand is known to be the customer's."""
    brand = repo.get_brand(session, brand_id)
    if brand is None:
        raise ConfigError(f"brand_id: no brand {brand_id}")
    if brand.customer_id != customer_id:
        raise ConfigError(f"customer_id: brand {brand_id} belongs to another customer")
    return brand.name


def _get_row(session: Any, job_id: Any) -> ScheduledJob:
    row = session.get(ScheduledJob, parse_uuid(job_id, "job_id"))
    if row is None or row.brand_id is None:
        raise UnknownIdError(f"job_id: no brand scheduled job {job_id}")
    return row


async def _apply(row: ScheduledJob) -> uuid.UUID:
    async with get_client() as client:
        deployment = await deployment_id(client, brand_job, BRAND_JOB_FLOW)
        return await apply_schedule(client, deployment, _slug(row.id), cron=row.cron_expression,
                                    timezone=row.timezone, active=row.is_enabled, parameters=_parameters(row))


async def list_scheduled_jobs(customer_id: Any = None, brand_id: Any = None) -> list[dict[str, Any]]:
    query = select(ScheduledJob).where(ScheduledJob.brand_id.is_not(None)).order_by(ScheduledJob.created_at)
    if customer_id is not None:
        query = query.where(ScheduledJob.customer_id == parse_uuid(customer_id, "customer_id"))
    if brand_id is not None:
        query = query.where(ScheduledJob.brand_id == parse_uuid(brand_id, "brand_id"))
    with session_scope(db_url()) as session:
        rows = list(session.execute(query).scalars())
        names = _brand_names(session, {r.brand_id for r in rows})
        return [scheduled_job_view(r, brand_name=names.get(r.brand_id)) for r in rows]


async def get_scheduled_job(job_id: Any) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        row = _get_row(session, job_id)
        view = scheduled_job_view(row, brand_name=_brand_names(session, {row.brand_id}).get(row.brand_id))
    async with get_client() as client:
        schedule = await read_schedule(client, await deployment_id(client, brand_job, BRAND_JOB_FLOW),
                                       _slug(uuid.UUID(view["id"])))
    view["prefect_schedule_id"] = str(schedule.id) if schedule else None
    view["prefect_active"] = schedule.active if schedule else None
    return view


def _copy(row: ScheduledJob, **changes: Any) -> ScheduledJob:
    """A detached copy (no session, no lock held) with ``changes`` applied."""
    values = {attr.key: getattr(row, attr.key) for attr in inspect(ScheduledJob).column_attrs}
    return ScheduledJob(**(values | changes))


async def _remove(job_id: uuid.UUID) -> None:
    async with get_client() as client:
        await remove_schedule(client, await deployment_id(client, brand_job, BRAND_JOB_FLOW), _slug(job_id))


# Prefect is called outside any database transaction (on SQLite a transaction holds the
# write lock), and a failed database write undoes the Prefect change, so the row and the
# schedule never disagree for long and a refused schedule never leaves a row behind.


async def create_scheduled_job(*, brand_id: Any, customer_id: Any, job_type: str, cron_expression: str,
                               timezone: str = "UTC", is_active: bool = True,
                               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    brand, customer = parse_uuid(brand_id, "brand_id"), parse_uuid(customer_id, "customer_id")
    kind = parse_job_type(job_type)
    cron = parse_schedule(cron_expression, timezone)
    meta = parse_metadata(metadata).dump()
    with session_scope(db_url()) as session:
        brand_name = _brand_row(session, brand, customer)
    now = utcnow()
    job_id = uuid.uuid4()
    row = ScheduledJob(id=job_id, name=_slug(job_id), job_type=kind, job_data=meta, cron_expression=cron,
                       timezone=timezone, is_enabled=is_active, brand_id=brand, customer_id=customer,
                       next_run_time=next_run(cron, timezone, now), last_run_time=None, created_at=now,
                       updated_at=now)
    schedule_id = await _apply(row)
    try:
        with session_scope(db_url()) as session:
            session.add(_copy(row))
    except BaseException:
        await _remove(job_id)
        raise
    return scheduled_job_view(row, schedule_id, brand_name)


async def update_scheduled_job(job_id: Any, *, cron_expression: str | None = None, timezone: str | None = None,
                               metadata: dict[str, Any] | None = None, is_active: bool | None = None,
                               job_type: str | None = None) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        old = _copy(_get_row(session, job_id))
        brand_name = _brand_names(session, {old.brand_id}).get(old.brand_id)
    tz = timezone or old.timezone
    cron = parse_schedule(cron_expression or old.cron_expression, tz)
    now = utcnow()
    changes: dict[str, Any] = {"cron_expression": cron, "timezone": tz, "updated_at": now,
                               "next_run_time": next_run(cron, tz, now)}
    if metadata is not None:
        changes["job_data"] = parse_metadata(metadata).dump()
    if job_type is not None:
        changes["job_type"] = parse_job_type(job_type)
    if is_active is not None:
        changes["is_enabled"] = is_active
    new = _copy(old, **changes)
    schedule_id = await _apply(new)
    try:
        with session_scope(db_url()) as session:
            session.execute(sa_update(ScheduledJob).where(ScheduledJob.id == old.id).values(changes))
    except BaseException:
        await _apply(old)
        raise
    return scheduled_job_view(new, schedule_id, brand_name)


async def delete_scheduled_job(job_id: Any) -> bool:
    """Remove the Prefect schedule, then the row; UnknownIdError if there was none."""
    with session_scope(db_url()) as session:
        old = _copy(_get_row(session, job_id))
    await _remove(old.id)
    try:
        with session_scope(db_url()) as session:
            session.execute(sa_delete(ScheduledJob).where(ScheduledJob.id == old.id))
    except BaseException:
        await _apply(old)
        raise
    return True


async def trigger_scheduled_job(job_id: Any) -> dict[str, Any]:
    """Run now: a ``pending`` job run, and a flow run of the deployment that a worker executes."""
    with session_scope(db_url()) as session:
        row = _get_row(session, job_id)
        params = _parameters(row)
        run = repo.create_job_run(session, brand_id=row.brand_id, customer_id=row.customer_id,  # type: ignore[arg-type]
                                  job_type=row.job_type, metadata=dict(row.job_data), scheduled_job_id=row.id)
        run_id = run.id
    try:
        async with get_client() as client:
            await deployment_id(client, brand_job, BRAND_JOB_FLOW)
        flow_run = await trigger_deployment(BRAND_JOB_DEPLOYMENT, {**params, "job_run_id": str(run_id)},
                                            tags=["jobpipes", "brand-job", "manual"])
    except Exception as exc:
        with session_scope(db_url()) as session:
            repo.finish_job_run(session, run_id, status=JobRunStatus.FAILED, metrics={},
                                error=f"could not start the flow run: {type(exc).__name__}: {exc}")
        raise
    with session_scope(db_url()) as session:
        session.get(JobRun, run_id).flow_run_id = str(flow_run.id)  # type: ignore[union-attr]
    return {"job_run_id": str(run_id), "flow_run_id": str(flow_run.id), "flow_run_url": flow_run_url(flow_run.id),
            "status": JobRunStatus.PENDING.value}


async def page_job_runs(*, customer_id: Any = None, brand_id: Any = None, status: str | None = None,
                        limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """``{total, limit, offset, items}``: the matching job runs, newest first, ``limit`` from ``offset``."""
    if status is not None and status not in [s.value for s in JobRunStatus]:
        raise ConfigError(f"status: unknown status {status!r}; known: {', '.join(s.value for s in JobRunStatus)}")
    if not 1 <= limit <= 1000:
        raise ConfigError(f"limit: must be between 1 and 1000 (got {limit})")
    if offset < 0:
        raise ConfigError(f"offset: must be 0 or more (got {offset})")
    query = select(JobRun)
    if customer_id:
        query = query.where(JobRun.customer_id == parse_uuid(customer_id, "customer_id"))
    if brand_id:
        query = query.where(JobRun.brand_id == parse_uuid(brand_id, "brand_id"))
    if status:
        query = query.where(JobRun.status == status)
    with session_scope(db_url()) as session:
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        runs = session.execute(query.order_by(JobRun.created_at.desc(), JobRun.id).limit(limit).offset(offset))
        items = [job_run_view(r) for r in runs.scalars()]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


async def list_job_runs(*, customer_id: Any = None, brand_id: Any = None, status: str | None = None,
                        limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """The matching job runs, newest first (``page_job_runs`` without the envelope)."""
    page = await page_job_runs(customer_id=customer_id, brand_id=brand_id, status=status, limit=limit,
                               offset=offset)
    return list(page["items"])


async def get_job_run(run_id: Any) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        run = session.get(JobRun, parse_uuid(run_id, "run_id"))
        if run is None:
            raise UnknownIdError(f"run_id: no job run {run_id}")
        return job_run_view(run)


def brand_or_unknown(session: Any, brand_id: Any) -> Any:
    """The brand of ``brand_id`` (validated as a UUID), or UnknownIdError naming it."""
    brand = repo.get_brand(session, parse_uuid(brand_id, "brand_id"))
    if brand is None:
        raise UnknownIdError(f"brand_id: no brand {brand_id}")
    return brand


async def brand_topics_queries(brand_id: Any) -> dict[str, Any]:
    with session_scope(db_url()) as session:
        brand = brand_or_unknown(session, brand_id)
        return {"brand_id": str(brand.id), "customer_id": str(brand.customer_id), "name": brand.name,
                "competitors": list(brand.competitors), "topics": repo.topics_and_queries(session, brand.id)}


async def sync_brand_schedules() -> int:
    """Re-apply every brand schedule to Prefect (after a Prefect database reset, say)."""
    with session_scope(db_url()) as session:
        rows = [_copy(r) for r in session.execute(select(ScheduledJob).where(ScheduledJob.brand_id.is_not(None)))
                .scalars()]
    for row in rows:  # outside the transaction: no database lock held across Prefect calls
        await _apply(row)
    return len(rows)


# --- the brand job as an operable job (deployments.control.rows) ------------------------

def _brand_lookup(session: Any, key: str) -> ScheduledJob | None:
    try:
        row = session.get(ScheduledJob, uuid.UUID(key))
    except ValueError:
        return None
    return row if row is not None and row.brand_id is not None else None


async def _brand_view(job: ScheduledRowJob) -> dict[str, Any]:
    return await get_scheduled_job(job.row_id)


async def _brand_change(job: ScheduledRowJob, schedule: str | None, timezone: str | None, active: bool | None,
                        config: dict[str, Any] | None) -> None:
    await update_scheduled_job(job.row_id, cron_expression=schedule, timezone=timezone, is_active=active,
                               metadata=config)


async def _brand_trigger(job: ScheduledRowJob) -> Triggered:
    started = await trigger_scheduled_job(job.row_id)
    return Triggered(started["flow_run_id"], "Scheduled", {}, {"job_run_id": started["job_run_id"]})


def brand_run_view(run: JobRun) -> dict[str, Any]:
    """A brand job run in the executions' shape of every job."""
    return {"id": str(run.id), "status": run.status, "started_at": iso(run.started_at or run.created_at),
            "finished_at": iso(run.finished_at), "duration_ms": duration_ms(run.started_at, run.finished_at),
            "counts": None, "api_calls": None, "error": run.error_message, "metrics": run.metrics,
            "flow_run_id": run.flow_run_id, "flow_run_url": flow_run_url(run.flow_run_id) if run.flow_run_id else None}


BRAND_ROWS = RowKind(
    family="brands", prefix="brand-job-", deployment=BRAND_JOB_DEPLOYMENT, flow=brand_job,
    owns=lambda row: row.brand_id is not None, key=lambda row: str(row.id), lookup=_brand_lookup,
    view=_brand_view, change=_brand_change, trigger=_brand_trigger,
    history=lambda job: History(JobRun, JobRun.scheduled_job_id == job.row_id, JobRun.created_at, brand_run_view))
