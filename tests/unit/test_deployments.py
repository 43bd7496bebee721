"""prefect.yaml agrees with the settings, and every entrypoint resolves to a flow."""

from __future__ import annotations

import importlib

import yaml

from core.config import DEFAULT_CONFIG_FILE, PROJECT_ROOT
from core.settings import file_defaults, load_settings
from deployments.control.registry import BY_ID, JOBS, prefect_yaml
from deployments.serve import build_deployments
from flows import local_jobs


def _spec() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())


def test_prefect_yaml_is_written_from_the_job_specs():
    current = (PROJECT_ROOT / "prefect.yaml").read_text()
    assert prefect_yaml(current) == current, "prefect.yaml differs: python -m deployments.control.registry write-prefect-yaml"


def test_prefect_yaml_lists_every_job_once_with_the_config_files_schedules(monkeypatch):
    monkeypatch.setenv("CRON_PROFILE_FETCHER_SCHEDULE", "1 2 3 4 5")  # the environment is not the default
    by_name = {d["name"]: d for d in _spec()["deployments"]}
    # The product's 15 jobs, plus any that `jobpipes new-job` added (flows.local_jobs.MODULES).
    own = [job for job in JOBS if job.flow.fn.__module__ not in local_jobs.MODULES]
    assert list(by_name) == [job.id for job in JOBS] and len(JOBS) == len(BY_ID) and len(own) == 15
    defaults = file_defaults(DEFAULT_CONFIG_FILE)
    for job in JOBS:
        schedule = job.default_schedule(defaults)
        assert by_name[job.id].get("schedules") == (
            None if schedule is None else [{"cron": schedule.cron, "timezone": schedule.timezone,
                                            "active": schedule.active}]), job.id
        assert by_name[job.id]["tags"] == list(job.tags) and by_name[job.id].get("concurrency_limit") == job.concurrency
    assert by_name["profile-fetcher"]["schedules"][0]["cron"] == "*/15 * * * *"
    assert by_name["top-coins-collection"]["schedules"][0]["cron"] == "0 0 * * *"  # the seed's 6 fields, 0 s dropped
    assert "jobpipes" not in by_name["release-crashed-run"]["tags"]  # a crashed release starts no release


def test_every_entrypoint_is_a_flow_named_like_its_deployment():
    for deployment in _spec()["deployments"]:
        path, func = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert getattr(module, func).name == deployment["name"]


def test_served_deployments_follow_settings_and_disabled_jobs_are_inactive(monkeypatch, tmp_path):
    (tmp_path / "c.yml").write_text("cron:\n  profileFetcherSchedule: '5 * * * *'\n  timezone: Europe/Madrid\n")
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "c.yml"))
    monkeypatch.setenv("PRICE_COLLECTION_ENABLED", "false")
    monkeypatch.setenv("TOP_COINS_COLLECTION_SCHEDULE", "0 30 2 * * *")
    deployments = {d.name: d for d in build_deployments(load_settings())}
    [fetcher] = deployments["profile-fetcher"].schedules
    assert (fetcher.schedule.cron, fetcher.schedule.timezone, fetcher.active) == ("5 * * * *", "Europe/Madrid", True)
    [prices] = deployments["price-collection"].schedules
    assert prices.active is False
    [top] = deployments["top-coins-collection"].schedules
    assert top.schedule.cron == "30 2 * * *"
    assert deployments["requeue-failed"].schedules == []


def test_riot_schedules_have_one_source():
    """prefect.yaml and the seeded job_configurations rows agree with core.riot.config."""
    import importlib.util

    from core.riot.config import DEFAULT_SCHEDULES

    by_name = {d["name"]: d for d in _spec()["deployments"]}
    for name, cron in DEFAULT_SCHEDULES.items():
        [schedule] = by_name[name]["schedules"]
        assert (schedule["cron"], schedule["timezone"]) == (cron, "UTC")
    path = PROJECT_ROOT / "core" / "db" / "migrations" / "versions" / "0004_riot.py"
    spec = importlib.util.spec_from_file_location("m0004", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    seeded = {t.lower().replace("_", "-"): s for t, _, s, _ in migration.DEFAULT_JOBS}
    assert seeded == DEFAULT_SCHEDULES
