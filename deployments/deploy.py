"""Re-apply the schedules from settings to the deployments made from ``prefect.yaml``.

    uv run prefect --no-prompt deploy --all     # creates the deployments
    uv run python -m deployments.deploy         # schedules := config/config.yml + env

Each deployment's first schedule gets the configured cron and timezone, and is inactive
when the job is disabled (``cron_job_configs.enabled``, or ``*_ENABLED=false``).
"""

from __future__ import annotations

import asyncio
import sys

from prefect.client.orchestration import get_client

from core.db import session_scope
from core.db.migrate import ensure_schema
from core.profiles.job_configs import ensure_defaults
from core.profiles.models import CronJobConfig
from core.settings import Settings, get_settings
from deployments.schedules import configured_schedules
from tasks.prefect_api import set_primary_schedule


def _enabled_jobs(settings: Settings) -> dict[str, bool]:
    ensure_schema(settings.database_url)
    with session_scope(settings.database_url) as session:
        ensure_defaults(session, settings.cron)
        return {row.name: row.enabled for row in session.query(CronJobConfig)}


async def apply(settings: Settings) -> list[str]:
    changes = []
    async with get_client() as client:
        for spec in configured_schedules(settings, _enabled_jobs(settings)):
            deployment = await client.read_deployment_by_name(spec.deployment)
            await set_primary_schedule(client, deployment.id, cron=spec.cron, timezone=spec.timezone,
                                       active=spec.active)
            changes.append(f"{spec.deployment}: {spec.cron} ({spec.timezone}) "
                           f"{'active' if spec.active else 'inactive'}")
    return changes


def main() -> int:
    from deployments.brand_admin import sync_brand_schedules

    for line in asyncio.run(apply(get_settings())):
        print(line)
    # `prefect deploy` may reset the brand-job deployment's schedules: re-apply them.
    print(f"brand-job/brand-job: {asyncio.run(sync_brand_schedules())} brand schedules re-applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
