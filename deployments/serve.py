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

from prefect import Flow, serve
from prefect.schedules import Cron

from core.riot.config import DEFAULT_SCHEDULES as RIOT_SCHEDULES
from core.settings import Settings, get_settings
from deployments.ops.catalog import FIXED
from deployments.ops.configs import JobSettings, deployment_parameters, read_settings
from deployments.schedules import configured_schedules
from flows.brands import brand_job
from flows.jobqueue import enqueue_scheduled_job
from flows.profiles import add_profile_entries, requeue_failed
from flows.riot import add_tracked_player

_UNSCHEDULED: list[Flow[..., Any]] = [requeue_failed, add_profile_entries, add_tracked_player]


def _defaults(settings: Settings) -> dict[str, JobSettings]:
    """The schedules the first deploy would write (used when no table is given)."""
    rows = {s.deployment.split("/")[0]: JobSettings(s.cron, s.timezone, s.active, {})
            for s in configured_schedules(settings)}
    return rows | {name: JobSettings(cron, "UTC", True, {}) for name, cron in RIOT_SCHEDULES.items()}


def build_deployments(settings: Settings, rows: dict[str, JobSettings] | None = None) -> list[Any]:
    """Deployments named as in prefect.yaml, scheduled from ``rows`` (job id -> its config row)."""
    rows = rows if rows is not None else _defaults(settings)
    deployments = []
    for job in FIXED.values():
        s = rows[job.id]
        params = deployment_parameters(job, s) if s.config else None
        deployments.append(job.flow.to_deployment(
            name=job.id, tags=["jobpipes"], schedules=[Cron(s.schedule, timezone=s.timezone, active=s.active)],
            concurrency_limit=job.concurrency, parameters=params or {}))
    for flow in _UNSCHEDULED:
        deployments.append(flow.to_deployment(name=flow.name, tags=["jobpipes"]))
    # Their schedules belong to scheduled_jobs (add_or_update_scheduled_job, the brand admin):
    # pass none here so that serving does not replace them.
    deployments.append(enqueue_scheduled_job.to_deployment(name=enqueue_scheduled_job.name,
                                                           tags=["jobpipes"]))
    deployments.append(brand_job.to_deployment(name=brand_job.name, tags=["jobpipes", "brands"]))
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
