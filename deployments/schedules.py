"""The default (cron, timezone, active) of each scheduled deployment, from settings.

These are only defaults: the first deploy writes them into the config tables
(``deployments.ops.configs.ensure_job_rows``), which are the source of every schedule
afterwards. prefect.yaml repeats them (tests/unit/test_deployments.py keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings


@dataclass(frozen=True)
class ScheduleSpec:
    deployment: str  # "flow-name/deployment-name"
    cron: str
    timezone: str
    active: bool


def configured_schedules(settings: Settings, enabled: dict[str, bool] | None = None) -> list[ScheduleSpec]:
    """Every scheduled job of seeds 000 and 004; ``enabled`` (job name -> flag) may switch
    the seed-000 jobs off, the ``*_ENABLED`` settings switch the crypto jobs off."""
    enabled = enabled or {}
    cron, jobs = settings.cron, settings.crypto_jobs
    return [
        ScheduleSpec("profile-fetcher/profile-fetcher", cron.profile_fetcher_schedule, cron.timezone,
                     enabled.get("profile_fetcher", True)),
        ScheduleSpec("quota-reset/quota-reset", cron.quota_reset_schedule, cron.timezone,
                     enabled.get("quota_reset", True)),
        # Seed 004 schedules are UTC by definition.
        ScheduleSpec("top-coins-collection/top-coins-collection", jobs.top_coins_collection.schedule,
                     "UTC", jobs.top_coins_collection.enabled),
        ScheduleSpec("price-collection/price-collection", jobs.price_collection.schedule, "UTC",
                     jobs.price_collection.enabled),
        ScheduleSpec("contract-addresses-collection/contract-addresses-collection",
                     jobs.contract_addresses_collection.schedule, "UTC",
                     jobs.contract_addresses_collection.enabled),
    ]
