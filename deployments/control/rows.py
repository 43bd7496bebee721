"""Jobs that are rows of ``scheduled_jobs``, one schedule each of a shared deployment: a
brand job (seed 003, ``deployments.control.brand_admin.BRAND_ROWS``) or a job-queue job
(seed 002, ``deployments.control.scheduled_jobs.QUEUE_ROWS``).

Each family declares a :class:`RowKind`: how its rows are told apart, named, read,
changed, triggered, and where their executions are. The operations layer reads the kind,
never the family.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import Flow
from sqlalchemy.orm import Session

from core.db.scheduled_jobs import ScheduledJob


@dataclass(frozen=True)
class Triggered:
    """A run started by hand: its flow run, and what the family adds (a brand's job run id)."""

    flow_run_id: str
    state: str
    parameters: dict[str, Any]
    extra: dict[str, Any]


@dataclass(frozen=True)
class History:
    """Where a row job's executions are: the model, the filter, the time column, the view."""

    model: Any
    where: Any
    column: Any
    view: Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class RowKind:
    family: str
    prefix: str  # job id = prefix + key(row)
    deployment: str  # the shared deployment, "flow/deployment"
    flow: Flow[..., Any]
    owns: Callable[[ScheduledJob], bool]
    key: Callable[[ScheduledJob], str]
    lookup: Callable[[Session, str], ScheduledJob | None]  # the row of a key, if it is one of ours
    # {"cron_expression", "timezone", "is_active", "metadata"} of the row
    view: Callable[[ScheduledRowJob], Awaitable[dict[str, Any]]]
    # (job, schedule, timezone, active, config): validated and applied, or ConfigError naming the field
    change: Callable[[ScheduledRowJob, str | None, str | None, bool | None, dict[str, Any] | None], Awaitable[None]]
    trigger: Callable[[ScheduledRowJob], Awaitable[Triggered]]
    history: Callable[[ScheduledRowJob], History]


@dataclass(frozen=True)
class ScheduledRowJob:
    id: str
    kind: RowKind
    row_id: uuid.UUID
    name: str
    job_type: str

    @property
    def family(self) -> str:
        return self.kind.family

    @property
    def deployment(self) -> str:
        return self.kind.deployment

    @property
    def flow(self) -> Flow[..., Any]:
        return self.kind.flow

    @property
    def title(self) -> str:
        return self.name


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None
