"""Serve every job from this process, with the schedules from settings (no work pool needed).

    uv run python -m deployments.serve
    uv run prefect deployment run 'profile-fetcher/profile-fetcher'   # from another shell

The served deployments have the same names as those in ``prefect.yaml``; use one or the
other for a given Prefect server, not both.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, serve
from prefect.schedules import Cron

from core.riot.config import DEFAULT_SCHEDULES as RIOT_SCHEDULES
from core.settings import Settings, get_settings
from deployments.schedules import configured_schedules
from flows.brands import brand_job
from flows.crypto import contract_addresses_collection, price_collection, top_coins_collection
from flows.jobqueue import enqueue_scheduled_job
from flows.profiles import add_profile_entries, profile_fetcher, quota_reset, requeue_failed
from flows.riot import ban_checker, match_fetcher, smurf_analyzer, tracked_player_updater

_FLOWS: list[Flow[..., Any]] = [profile_fetcher, quota_reset, top_coins_collection, price_collection,
          contract_addresses_collection, requeue_failed, add_profile_entries,
          tracked_player_updater, match_fetcher, smurf_analyzer, ban_checker]
_SINGLE_RUN = {"profile-fetcher", "price-collection", "tracked-player-updater", "match-fetcher"}


def build_deployments(settings: Settings) -> list[Any]:
    """Deployments named as in prefect.yaml, scheduled from settings."""
    specs = {s.deployment.split("/")[0]: s for s in configured_schedules(settings)}
    deployments = []
    for flow in _FLOWS:
        spec = specs.get(flow.name)
        schedules = [Cron(spec.cron, timezone=spec.timezone, active=spec.active)] if spec else []
        if flow.name in RIOT_SCHEDULES:  # seed 001: the job_configurations defaults
            schedules = [Cron(RIOT_SCHEDULES[flow.name], timezone="UTC")]
        deployments.append(flow.to_deployment(
            name=flow.name, tags=["jobpipes"], schedules=schedules,
            concurrency_limit=1 if flow.name in _SINGLE_RUN else None,
        ))
    # Its schedules belong to scheduled_jobs (add_or_update_scheduled_job), not to settings:
    # pass none here so that serving does not replace them.
    deployments.append(enqueue_scheduled_job.to_deployment(name=enqueue_scheduled_job.name,
                                                           tags=["jobpipes"]))
    # Likewise: brand schedules belong to scheduled_jobs (deployments.brand_admin).
    deployments.append(brand_job.to_deployment(name=brand_job.name, tags=["jobpipes", "brands"]))
    return deployments


def main() -> None:
    serve(*build_deployments(get_settings()))


if __name__ == "__main__":
    main()
