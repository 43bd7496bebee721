"""Read a job's ``cron_job_configs`` row at the start of a run and stamp ``last_run``."""

from __future__ import annotations

from core.db import job_configs, session_scope
from core.db.job_configs import JobConfig
from core.settings import get_settings
from tasks._common import db_task, db_url


@db_task
async def load_job_config(name: str) -> JobConfig:
    """The job's config (defaults inserted when missing), with ``last_run`` set to now."""
    settings = get_settings()
    with session_scope(db_url(settings)) as session:
        return job_configs.load_for_run(session, name, settings)
