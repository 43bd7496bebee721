"""Every operable job: the fixed jobs of seeds 000, 001 and 004 (one deployment each, one
row in a config table) and the scheduled jobs of seeds 002 and 003 (one ``scheduled_jobs``
row each, one schedule of a shared deployment).

Job ids: the deployment name for a fixed job (``price-collection``), the Prefect schedule
slug for a scheduled job (``brand-job-<uuid>``, ``scheduled-job-<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from prefect import Flow
from sqlalchemy import select

from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.errors import ConfigError
from deployments.control import registry
from deployments.control.brand_admin import BRAND_ROWS
from deployments.control.rows import RowKind, ScheduledRowJob
from deployments.control.scheduled_jobs import QUEUE_ROWS
from flows.spec import JobSpec
from tasks._common import db_url

Family = str  # a family name, as the specs give it (registry.FAMILIES)
FAMILIES: tuple[str, ...] = registry.FAMILIES


class UnknownJob(LookupError):
    """No job with this id (a 404 naming ``job_id``)."""


@dataclass(frozen=True)
class FixedJob:
    """A job with its own deployment, configured by one row of a config table: a view of its
    spec (``flows.<family>.JOBS``), which holds every fact about it."""

    spec: JobSpec

    @property
    def id(self) -> str:  # the flow and deployment name
        return self.spec.id

    @property
    def family(self) -> Family:
        return self.spec.family

    @property
    def flow(self) -> Flow[..., Any]:
        return self.spec.flow

    @property
    def table(self) -> Literal["cron_job_configs", "job_configurations"]:
        assert self.spec.config_table is not None
        return self.spec.config_table

    @property
    def key(self) -> str:  # cron_job_configs.name or job_configurations.job_type
        return str(self.spec.config_key)

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def concurrency(self) -> int | None:
        return self.spec.concurrency

    @property
    def deployment(self) -> str:
        return self.spec.deployment

    @property
    def history_name(self) -> str:
        """``job_execution_history.job_name`` of its runs."""
        return self.spec.history_name


FIXED_JOBS: tuple[FixedJob, ...] = tuple(FixedJob(spec) for spec in registry.configured())
FIXED: dict[str, FixedJob] = {job.id: job for job in FIXED_JOBS}
ROW_KINDS: tuple[RowKind, ...] = (QUEUE_ROWS, BRAND_ROWS)
BRAND_PREFIX, QUEUE_PREFIX = BRAND_ROWS.prefix, QUEUE_ROWS.prefix
BRAND_DEPLOYMENT, QUEUE_DEPLOYMENT = BRAND_ROWS.deployment, QUEUE_ROWS.deployment

Job = FixedJob | ScheduledRowJob


def _row_job(row: ScheduledJob) -> ScheduledRowJob:
    kind = next(k for k in ROW_KINDS if k.owns(row))
    return ScheduledRowJob(f"{kind.prefix}{kind.key(row)}", kind, row.id, row.name, row.job_type)


def scheduled_rows() -> list[ScheduledJob]:
    """Every ``scheduled_jobs`` row, detached (by kind as ``ROW_KINDS`` lists them, oldest first)."""
    with session_scope(db_url()) as session:
        rows = list(session.execute(select(ScheduledJob).order_by(ScheduledJob.created_at)).scalars())
        session.expunge_all()
    order = {kind.family: i for i, kind in enumerate(ROW_KINDS)}
    return sorted(rows, key=lambda r: next(order[k.family] for k in ROW_KINDS if k.owns(r)))


def all_jobs(family: str | None = None) -> list[Job]:
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"family: unknown family {family!r}; known: {', '.join(FAMILIES)}")
    jobs: list[Job] = [*FIXED_JOBS, *(_row_job(r) for r in scheduled_rows())]
    return [j for j in jobs if family is None or j.family == family]


def get_job(job_id: str) -> Job:
    """The job ``job_id``; UnknownJob (404) when there is none."""
    if job_id in FIXED:
        return FIXED[job_id]
    if "\x00" in job_id or len(job_id) > 300:  # never a job; PostgreSQL refuses NUL in text
        raise UnknownJob(f"job_id: no job {job_id[:80]!r}")
    with session_scope(db_url()) as session:
        row: ScheduledJob | None = None
        for kind in ROW_KINDS:
            if job_id.startswith(kind.prefix):
                row = kind.lookup(session, job_id[len(kind.prefix):])
                break
        if row is None:
            raise UnknownJob(f"job_id: no job {job_id!r}; GET /api/v1/jobs lists them")
        return _row_job(row)
