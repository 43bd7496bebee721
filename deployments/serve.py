"""Serve every job from this process (no work pool needed), scheduled from the config tables.

    uv run python -m deployments.serve
    uv run prefect deployment run 'profile-fetcher/profile-fetcher'   # from another shell

The served deployments have the same names as those in ``prefect.yaml``; use one or the
other for a given Prefect server, not both. Missing config rows are first written from the
defaults (``deployments.deploy``); later changes go through ``PUT /api/v1/jobs/{id}/config``,
which updates the served deployment's schedule at once.
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.schedules import Cron

from core.settings import Settings, get_settings
from deployments.control.catalog import FIXED
from deployments.control.configs import JobSettings, deployment_parameters, read_settings
from deployments.control.registry import JOBS


def _defaults(settings: Settings) -> dict[str, JobSettings]:
    """The schedules the first deploy would write (used when no table is given)."""
    return {job.id: JobSettings(d.cron, d.timezone, d.active, {}) for job in JOBS
            if (d := job.default_schedule(settings)) is not None}


def build_deployments(settings: Settings, rows: dict[str, JobSettings] | None = None) -> list[Any]:
    """Every job's deployment, named as in prefect.yaml; a configured job is scheduled from
    ``rows`` (job id -> its config row), a shared one gets none here (its schedules belong to
    ``scheduled_jobs``: add_or_update_scheduled_job, the brand admin), so serving keeps them."""
    rows = rows if rows is not None else _defaults(settings)
    deployments = []
    for job in JOBS:
        if job.id in FIXED:
            s = rows[job.id]
            params = deployment_parameters(FIXED[job.id], s) if s.config else None
            deployments.append(job.flow.to_deployment(
                name=job.id, tags=list(job.tags), concurrency_limit=job.concurrency, parameters=params or {},
                schedules=[Cron(s.schedule, timezone=s.timezone, active=s.active)]))
        else:
            deployments.append(job.flow.to_deployment(name=job.id, tags=list(job.tags),
                                                      concurrency_limit=job.concurrency))
    return deployments


def main() -> None:
    from core.db.migrate import ensure_schema
    from deployments.deploy import write_defaults

    settings = get_settings()
    ensure_schema(settings.database_url)
    write_defaults(settings)
    serve(*build_deployments(settings, read_settings()))


if __name__ == "__main__":
    main()
