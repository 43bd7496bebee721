"""Each fixed job's configuration: its row in ``cron_job_configs`` (seed 000) or
``job_configurations`` (seeds 001 and 004) is the one source of its schedule, timezone,
active flag and knobs; ``apply`` makes the Prefect deployment match it.

Rows missing on first use are inserted from settings (``config/config.yml`` + environment,
equal to prefect.yaml's defaults) and the Riot defaults of migration 0004.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.cron import check_timezone, next_run, to_prefect_cron
from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import insert_missing
from core.errors import ConfigError, field_errors
from core.profiles.job_configs import ensure_defaults
from core.profiles.models import CronJobConfig
from core.riot.config import CONFIG_MODELS
from core.riot.models import JobConfiguration
from core.settings import Settings, get_settings
from deployments.ops.catalog import FIXED_JOBS, FixedJob
from tasks._common import db_url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileJobConfig(_Strict):
    """Seed 000 knobs (columns of ``cron_job_configs``)."""

    batch_size: int = Field(ge=1, le=1000)
    respect_quota: bool = True


class CryptoJobConfig(_Strict):
    """Seed 004 knob: ``limit`` coins/assets per run (None: all tracked assets)."""

    limit: int | None = Field(None, ge=1, le=10_000)


def config_model(job: FixedJob) -> type[BaseModel]:
    if job.family == "profiles":
        return ProfileJobConfig
    if job.family == "crypto":
        return CryptoJobConfig
    return CONFIG_MODELS[job.key]


@dataclass(frozen=True)
class JobSettings:
    schedule: str
    timezone: str
    active: bool
    config: dict[str, Any]

    def view(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "timezone": self.timezone, "active": self.active, "config": self.config}


def _crypto_defaults(settings: Settings) -> list[dict[str, Any]]:
    now, jobs = utcnow(), settings.crypto_jobs
    rows = []
    for job in FIXED_JOBS:
        if job.family == "crypto":
            cfg = getattr(jobs, job.history_name)
            rows.append({"job_type": job.key, "name": job.title, "schedule": cfg.schedule, "timezone": "UTC",
                         "is_active": cfg.enabled, "config_json": {"limit": cfg.limit},
                         "created_at": now, "updated_at": now})
    return rows


def ensure_job_rows(session: Session, settings: Settings | None = None) -> int:
    """Insert every missing config row from the defaults; existing rows are the operator's."""
    settings = settings or get_settings()
    return (ensure_defaults(session, settings.cron)
            + insert_missing(session, JobConfiguration.__table__, _crypto_defaults(settings),
                             conflict_columns=["job_type"]))


def _from_row(job: FixedJob, row: Any) -> JobSettings:
    if isinstance(row, CronJobConfig):
        return JobSettings(row.schedule, row.timezone, row.enabled,
                           {"batch_size": row.batch_size, "respect_quota": row.respect_quota})
    return JobSettings(row.schedule, row.timezone, row.is_active, dict(row.config_json or {}))


def _row(session: Session, job: FixedJob) -> Any:
    if job.table == "cron_job_configs":
        query: Any = select(CronJobConfig).where(CronJobConfig.name == job.key)
    else:
        query = select(JobConfiguration).where(JobConfiguration.job_type == job.key)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        ensure_job_rows(session)
        row = session.execute(query).scalar_one_or_none()
    if row is None:  # a Riot row deleted by hand: migration 0004's defaults are gone
        raise ConfigError(f"{job.table}: no row for {job.key!r}")
    return row


def read_settings(jobs: list[FixedJob] | None = None) -> dict[str, JobSettings]:
    """job id -> its settings, read from the config tables (missing rows inserted)."""
    with session_scope(db_url()) as session:
        ensure_job_rows(session)
        return {job.id: _from_row(job, _row(session, job)) for job in (jobs or list(FIXED_JOBS))}


def validate_change(job: FixedJob, current: JobSettings, *, schedule: str | None, timezone: str | None,
                    active: bool | None, config: dict[str, Any] | None) -> JobSettings:
    """The settings after the change; ConfigError naming the first bad field, nothing written."""
    tz = current.timezone if timezone is None else timezone
    try:
        check_timezone(tz)
    except ValueError as exc:
        raise ConfigError(f"timezone: {exc}") from None
    try:
        cron = to_prefect_cron(current.schedule if schedule is None else schedule)
        next_run(cron, tz, utcnow())
    except ValueError as exc:
        raise ConfigError(f"schedule: {exc}") from None
    except Exception:  # croniter finds no fire time (e.g. 31 February)
        raise ConfigError(f"schedule: {schedule!r} never fires") from None
    new_config = current.config
    if config is not None:
        try:
            new_config = config_model(job).model_validate(config).model_dump()
        except ValidationError as exc:
            raise ConfigError(field_errors(exc, prefix="config", empty="config")) from None
    return JobSettings(cron, tz, current.active if active is None else active, new_config)


def write_settings(job: FixedJob, new: JobSettings) -> None:
    """Store ``new`` in the job's row (one transaction)."""
    now = utcnow()
    with session_scope(db_url()) as session:
        row = _row(session, job)
        if isinstance(row, CronJobConfig):
            session.execute(update(CronJobConfig).where(CronJobConfig.id == row.id).values(
                schedule=new.schedule, timezone=new.timezone, enabled=new.active, updated_at=now,
                batch_size=new.config["batch_size"], respect_quota=new.config["respect_quota"]))
        else:
            session.execute(update(JobConfiguration).where(JobConfiguration.id == row.id).values(
                schedule=new.schedule, timezone=new.timezone, is_active=new.active, updated_at=now,
                config_json=new.config))


def deployment_parameters(job: FixedJob, settings: JobSettings) -> dict[str, Any] | None:
    """Default parameters the deployment's runs get from the row (crypto ``limit``), else None."""
    if job.family == "crypto":
        return {"limit": settings.config.get("limit")} if settings.config.get("limit") else {}
    return None
