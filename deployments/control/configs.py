"""Each fixed job's configuration: its row in ``cron_job_configs`` (seed 000) or
``job_configurations`` (seeds 001 and 004) is the one source of its schedule, timezone,
active flag and knobs; ``apply`` makes the Prefect deployment match it.

Rows missing on first use are inserted from settings (``config/config.yml`` + environment,
equal to prefect.yaml's defaults) and the Riot defaults of migration 0004.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.cron import check_timezone, interval_to_cron, next_run, to_prefect_cron
from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.db.types import utcnow
from core.db.upsert import insert_missing
from core.errors import ConfigError, field_errors
from core.profiles.job_configs import ensure_defaults
from core.profiles.models import CronJobConfig
from core.settings import Settings, get_settings
from deployments.control.catalog import FIXED_JOBS, FixedJob
from tasks._common import db_url


def config_model(job: FixedJob) -> type[BaseModel]:
    """The model of the job's knobs, from its spec (``flows.<family>.JOBS``)."""
    model = job.spec.config_model
    if model is None:
        raise ConfigError(f"config: {job.id} declares no config model")
    return model


@dataclass(frozen=True)
class JobSettings:
    schedule: str
    timezone: str
    active: bool
    config: dict[str, Any]

    def view(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "timezone": self.timezone, "active": self.active, "config": self.config}


def _job_configuration_defaults(settings: Settings) -> list[dict[str, Any]]:
    """New ``job_configurations`` rows of the jobs whose specs give their knobs' defaults
    (the Riot rows come from migration 0004)."""
    now = utcnow()
    rows = []
    for job in FIXED_JOBS:
        spec = job.spec
        schedule = spec.default_schedule(settings)
        if job.table != "job_configurations" or spec.config_defaults is None or schedule is None:
            continue
        rows.append({"job_type": job.key, "name": job.title, "schedule": schedule.cron, "timezone": schedule.timezone,
                     "is_active": schedule.active, "config_json": spec.config_defaults(settings),
                     "created_at": now, "updated_at": now})
    return rows


def ensure_job_rows(session: Session, settings: Settings | None = None) -> int:
    """Insert every missing config row from the defaults; existing rows are the operator's."""
    settings = settings or get_settings()
    return (ensure_defaults(session, settings.cron)
            + insert_missing(session, JobConfiguration.__table__, _job_configuration_defaults(settings),
                             conflict_columns=["job_type"]))


def _from_row(job: FixedJob, row: Any) -> JobSettings:
    if isinstance(row, CronJobConfig):
        return JobSettings(_schedule(job, row.schedule), row.timezone, row.enabled,
                           {"batch_size": row.batch_size, "respect_quota": row.respect_quota})
    return JobSettings(_schedule(job, row.schedule), row.timezone, row.is_active, dict(row.config_json or {}))


def _schedule(job: FixedJob, stored: str) -> str:
    """A row's schedule as a cron: seed 001's ``interval(seconds=300)`` (a row written the
    way its migrations do) becomes ``*/5 * * * *``; one no cron keeps names the row."""
    try:
        return interval_to_cron(stored) or stored
    except ValueError as exc:
        raise ConfigError(f"{job.table}.schedule of {job.key}: {exc}") from None


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
    derive = job.spec.parameters_from_config
    return derive(settings.config) if derive else None
