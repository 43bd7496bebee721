"""prefect.yaml agrees with the settings, and every entrypoint resolves to a flow."""

from __future__ import annotations

import importlib

import yaml

from core.config import DEFAULT_CONFIG_FILE, PROJECT_ROOT
from core.settings import load_settings
from deployments.schedules import configured_schedules
from deployments.serve import build_deployments


def _spec() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())


def test_prefect_yaml_schedules_match_the_config(monkeypatch):
    monkeypatch.setenv("CONFIG_FILE", str(DEFAULT_CONFIG_FILE))
    for var in ("CRON_PROFILE_FETCHER_SCHEDULE", "CRON_QUOTA_RESET_SCHEDULE", "CRON_TIMEZONE",
                "TOP_COINS_COLLECTION_SCHEDULE", "PRICE_COLLECTION_SCHEDULE",
                "CONTRACT_ADDRESSES_COLLECTION_SCHEDULE"):
        monkeypatch.delenv(var, raising=False)
    by_name = {d["name"]: d for d in _spec()["deployments"]}
    specs = configured_schedules(load_settings())
    assert len(specs) == 5
    for spec in specs:
        [schedule] = by_name[spec.deployment.split("/")[1]]["schedules"]
        assert (schedule["cron"], schedule["timezone"]) == (spec.cron, spec.timezone)


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
