"""Apply the config tables to the deployments made from ``prefect.yaml``.

    uv run prefect --no-prompt deploy --all     # creates the deployments (prefect.yaml's default schedules)
    uv run python -m deployments.deploy         # schedules := the config tables

The config tables are the one source of every job's schedule, timezone and active flag:
``cron_job_configs`` (seed 000) and ``job_configurations`` (seeds 001 and 004). The first
run inserts the rows that are missing, from settings (``config/config.yml`` + environment,
e.g. ``TOP_COINS_COLLECTION_SCHEDULE``; the same defaults as prefect.yaml); later runs keep
the rows as operators left them (``PUT /api/v1/jobs/{id}/config``) and only re-apply them,
which also undoes a ``prefect deploy`` that reset the schedules to prefect.yaml's.
Brand and job-queue schedules (``scheduled_jobs``) are re-applied too, and the automations
that release crashed runs and raise the alarms when a schedule does not fire are created.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from sqlalchemy import func, select

from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.db.migrate import ensure_schema
from core.profiles.models import CronJobConfig
from core.settings import Settings, get_settings
from deployments.control.configs import ensure_job_rows
from deployments.control.sync import apply_all
from prefect_api.automations import ensure_alert_automations, ensure_crash_automations


def write_defaults(settings: Settings) -> int:
    """Insert the missing config rows (the first deploy); returns how many."""
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        count = select(func.count()).select_from

        def rows() -> int:
            return sum(session.execute(count(t)).scalar_one() for t in (CronJobConfig, JobConfiguration))

        before = rows()
        ensure_job_rows(session, settings)
        return rows() - before


async def apply(settings: Settings) -> list[str]:
    inserted = write_defaults(settings)
    return [f"config tables: {inserted} default row(s) written"] + await apply_all()


def main() -> int:
    from deployments.control.brand_admin import sync_brand_schedules
    from deployments.control.scheduled_jobs import sync_all_schedules

    for line in asyncio.run(apply(get_settings())):
        print(line)
    # `prefect deploy` may reset the shared deployments' schedules: re-apply them.
    print(f"brand-job/brand-job: {asyncio.run(sync_brand_schedules())} brand schedules re-applied")
    print(f"enqueue-scheduled-job: {asyncio.run(sync_all_schedules())} job-queue schedules re-applied")
    # Dead runs are noticed (heartbeats stop -> Crashed) and released without a person.
    for line in asyncio.run(ensure_crash_automations()):
        print(f"automation: {line}")
    for line in asyncio.run(alert_automations(get_settings())):
        print(f"automation: {line}")
    return 0


async def alert_automations(settings: Settings) -> list[str]:
    """Prefect's watchdog automation calls the operations API's alarm check every
    ``alerts.checkEverySeconds`` when no check ran."""
    alerts, token = settings.alerts, settings.brand_jobs.admin_token.get_secret_value()
    if not alerts.enabled:
        return ["alarms: off (alerts.enabled)"]
    if not token:
        return ["alarms: not created: brandJobs.adminToken (env BRAND_ADMIN_TOKEN) is empty, and the "
                "operations API refuses every call without it"]
    return await ensure_alert_automations(alerts.webhook_url, token,
                                          every=timedelta(seconds=alerts.check_every_seconds))


if __name__ == "__main__":
    sys.exit(main())
