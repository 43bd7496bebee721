"""``cron_job_configs``: default rows inserted when missing, read per run, ``last_run`` stamped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.types import utcnow
from core.db.upsert import insert_missing
from core.profiles.models import CronJobConfig
from core.profiles.settings import CronSettings

PROFILE_FETCHER = "profile_fetcher"
QUOTA_RESET = "quota_reset"


class ProfileJobConfig(BaseModel):
    """Seed 000's knobs of a job (columns of ``cron_job_configs``), as the operations API changes them."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(ge=1, le=1000)
    respect_quota: bool = True


@dataclass(frozen=True)
class JobConfig:
    id: int
    name: str
    job_type: str
    schedule: str
    timezone: str
    enabled: bool
    batch_size: int
    respect_quota: bool
    last_run: datetime | None


def default_configs(cron: CronSettings) -> list[dict[str, object]]:
    """The seed's two jobs, with schedules and batch size taken from settings."""
    now = utcnow()
    common = {"timezone": cron.timezone, "enabled": True, "respect_quota": True,
              "batch_size": cron.batch_size, "created_at": now, "updated_at": now}
    return [
        {"name": PROFILE_FETCHER, "job_type": "PROFILE_FETCHER",
         "schedule": cron.profile_fetcher_schedule, **common},
        {"name": QUOTA_RESET, "job_type": "QUOTA_RESET",
         "schedule": cron.quota_reset_schedule, **common},
    ]


def ensure_defaults(session: Session, cron: CronSettings) -> int:
    """Insert the default job configs that are missing; existing rows are the user's."""
    return insert_missing(session, CronJobConfig.__table__, default_configs(cron),
                          conflict_columns=["name"])


def reset_schedule(session: Session, cron: CronSettings) -> tuple[str, str]:
    """(cron, timezone) of the quota reset: the ``quota_reset`` row, or settings if it has none."""
    row = session.execute(
        select(CronJobConfig.schedule, CronJobConfig.timezone).where(CronJobConfig.name == QUOTA_RESET)
    ).one_or_none()
    return (row.schedule, row.timezone) if row else (cron.quota_reset_schedule, cron.timezone)


def load_for_run(session: Session, name: str, cron: CronSettings) -> JobConfig:
    """Read the job's config (inserting defaults if missing) and stamp ``last_run``."""
    ensure_defaults(session, cron)
    row = session.execute(select(CronJobConfig).where(CronJobConfig.name == name)).scalar_one()
    now = utcnow()
    session.execute(
        update(CronJobConfig).where(CronJobConfig.id == row.id).values(last_run=now)
        .execution_options(synchronize_session=False)
    )
    return JobConfig(row.id, row.name, row.job_type, row.schedule, row.timezone, row.enabled,
                     row.batch_size, row.respect_quota, now)
