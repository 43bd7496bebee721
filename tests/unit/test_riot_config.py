"""Riot job configurations: the seeded rows and the platform filter (issue 12 item 10)."""

from __future__ import annotations

from sqlalchemy import select

from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.db.migrate import upgrade
from core.riot.config import DEFAULT_CONFIGS, parse_config


def test_platform_is_an_optional_filter():
    for job_type in ("TRACKED_PLAYER_UPDATER", "MATCH_FETCHER", "BAN_CHECKER"):
        assert "platform" not in DEFAULT_CONFIGS[job_type]
        assert parse_config(job_type, DEFAULT_CONFIGS[job_type]).platform is None
        assert parse_config(job_type, DEFAULT_CONFIGS[job_type] | {"platform": "EUW1"}).platform == "euw1"


def test_migrated_rows_no_longer_carry_the_unused_platform(tmp_path):
    url = f"sqlite:///{tmp_path / 'riot.db'}"
    upgrade(url)
    with session_scope(url) as session:
        rows = {r.job_type: r.config_json for r in session.execute(select(JobConfiguration)).scalars()}
    assert rows == DEFAULT_CONFIGS
