"""Outside systems write plain SQL: every table they fill has database-side defaults
(migration 0006), on SQLite and PostgreSQL, and the models declare the same ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from core.brands.models import Brand, BrandTopic, GeneratedQuery
from core.crypto.models import Asset
from core.db import session_scope
from core.db.engine import get_engine
from core.db.job_configurations import JobConfiguration
from core.db.migrate import upgrade
from core.db.scheduled_jobs import ScheduledJob
from core.jobqueue.models import Job, Registration
from core.models import Base
from core.profiles.models import ApiQuota, CronJobConfig, ProfileEntry
from core.riot.models import RiotPlayer
from flows.profiles import profile_fetcher
from tests.conftest import _truncate, reload_settings
from tests.factories import entry_rows, history_rows, profile_rows

CUSTOMER = uuid.UUID("00000000-0000-4000-8000-00000000c0de")

# What an outside writer sends: only the columns it knows about.
PLAIN_INSERTS = [
    "INSERT INTO profile_entries (urn) VALUES ('ACoAAPlainSql1')",
    "INSERT INTO api_quota_ledger (provider, period, monthly_limit) VALUES ('other', '2026-01-01T00:00Z', 10)",
    "INSERT INTO cron_job_configs (name, job_type, schedule) VALUES ('outside_job', 'OUTSIDE', '0 * * * *')",
    "INSERT INTO jobs (job_type) VALUES ('PurgeExpiredRegistrationsJob')",
    "INSERT INTO registrations (email) VALUES ('someone@example.com')",
    "INSERT INTO scheduled_jobs (name, job_type, cron_expression, next_run_time)"
    " VALUES ('nightly-purge', 'PurgeExpiredRegistrationsJob', '0 0 * * *', CURRENT_TIMESTAMP)",
    "INSERT INTO riot_players (puuid, platform) VALUES ('puuid-plain-sql', 'euw1')",
    "INSERT INTO job_configurations (job_type, name, schedule, config_json)"
    " VALUES ('OUTSIDE_JOB', 'Outside job', '0 * * * *', '{}')",
    f"INSERT INTO brands (customer_id, name) VALUES ('{CUSTOMER.hex}', 'Acme')",
    "INSERT INTO brand_topics (brand_id, name) VALUES ((SELECT id FROM brands WHERE name = 'Acme'), 'Shoes')",
    "INSERT INTO generated_queries (brand_id, topic_id, query_text) VALUES ("
    "(SELECT id FROM brands WHERE name = 'Acme'), (SELECT id FROM brand_topics WHERE name = 'Shoes'),"
    " 'best running shoes')",
    "INSERT INTO assets (coingecko_id, symbol, name) VALUES ('bitcoin', 'btc', 'Bitcoin')",
]
OUTSIDE_TABLES = ["profile_entries", "api_quota_ledger", "cron_job_configs", "jobs", "registrations",
                  "scheduled_jobs", "riot_players", "job_configurations", "brands", "brand_topics",
                  "generated_queries", "assets"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'plain.db'}"
        upgrade(url)
        yield url
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
        yield url
        _truncate(url)


def _recent(moment: datetime) -> bool:
    return abs(datetime.now(UTC) - moment) < timedelta(minutes=2)


def test_plain_sql_inserts_get_database_defaults(any_db):
    with get_engine(any_db).begin() as conn:
        for statement in PLAIN_INSERTS:
            conn.execute(text(statement))

    with session_scope(any_db) as s:
        entry = s.execute(select(ProfileEntry)).scalar_one()
        assert (entry.status, entry.fetch_count) == ("PENDING", 0)
        assert _recent(entry.created_at) and _recent(entry.updated_at)
        ledger = s.execute(select(ApiQuota)).scalar_one()
        assert (ledger.calls_used, ledger.reserved) == (0, 0) and _recent(ledger.created_at)
        config = s.execute(select(CronJobConfig)).scalar_one()
        assert (config.timezone, config.enabled, config.batch_size, config.respect_quota) == ("UTC", True, 10, True)
        job = s.execute(select(Job)).scalar_one()
        assert isinstance(job.id, uuid.UUID) and job.job_data == {}
        assert (job.status, job.attempts) == ("Pending", 0) and _recent(job.created_at)
        assert _recent(s.execute(select(Registration)).scalar_one().created_at)
        scheduled = s.execute(select(ScheduledJob)).scalar_one()
        assert isinstance(scheduled.id, uuid.UUID) and scheduled.job_data == {}
        assert (scheduled.timezone, scheduled.is_enabled) == ("UTC", True) and _recent(scheduled.updated_at)
        player = s.execute(select(RiotPlayer)).scalar_one()
        assert (player.is_tracked, player.matches_fetched, player.next_match_offset, player.is_exhausted) == (
            False, 0, 0, False)
        assert _recent(player.discovered_at) and _recent(player.updated_at)
        configured = s.execute(select(JobConfiguration).where(JobConfiguration.job_type == "OUTSIDE_JOB")).scalar_one()
        assert configured.is_active and _recent(configured.created_at) and _recent(configured.updated_at)
        brand = s.execute(select(Brand)).scalar_one()
        assert isinstance(brand.id, uuid.UUID) and brand.customer_id == CUSTOMER and brand.competitors == []
        topic = s.execute(select(BrandTopic)).scalar_one()
        query = s.execute(select(GeneratedQuery)).scalar_one()
        assert topic.brand_id == brand.id and query.topic_id == topic.id and query.is_active
        assert len({brand.id, topic.id, query.id, job.id, scheduled.id}) == 5
        asset = s.execute(select(Asset)).scalar_one()
        assert asset.is_tracked and _recent(asset.created_at) and _recent(asset.updated_at)


def test_models_declare_the_same_server_defaults_as_the_migrations(any_db):
    """A column has a database default iff its model says ``server_default``."""
    inspector = inspect(get_engine(any_db))
    mismatches = []
    for table in OUTSIDE_TABLES:
        model = Base.metadata.tables[table]
        for column in inspector.get_columns(table):
            in_db = column["default"] is not None
            in_model = model.c[column["name"]].server_default is not None
            if in_db != in_model and column.get("autoincrement") is not True:
                mismatches.append(f"{table}.{column['name']}: database {in_db}, model {in_model}")
    assert mismatches == []


def test_sqlite_upgrade_keeps_rows_children_and_checks(tmp_path):
    """0006 rebuilds SQLite tables; referenced parents must not cascade into their children."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    now = "2026-11-01 00:00:00.000000"
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO assets (coingecko_id, symbol, name, created_at, updated_at)"
                          f" VALUES ('eth', 'eth', 'Ethereum', '{now}', '{now}')"))
        conn.execute(text("INSERT INTO asset_prices (asset_id, timestamp, source, price_usd, created_at, updated_at)"
                          f" VALUES (1, '{now}', 'coingecko', 3000.0, '{now}', '{now}')"))
        conn.execute(text("INSERT INTO brands (id, customer_id, name, competitors, created_at)"
                          f" VALUES ('{uuid.uuid4().hex}', '{CUSTOMER.hex}', 'Acme', '[]', '{now}')"))
        conn.execute(text("INSERT INTO brand_topics (id, brand_id, name, created_at)"
                          f" VALUES ('{uuid.uuid4().hex}', (SELECT id FROM brands), 'Shoes', '{now}')"))
        conn.execute(text("INSERT INTO cron_job_configs (name, job_type, schedule, created_at, updated_at)"
                          f" VALUES ('profile_fetcher', 'PROFILE_FETCHER', '*/15 * * * *', '{now}', '{now}')"))
        conn.execute(text("INSERT INTO job_execution_history (job_name, job_type, status, started_at, finished_at,"
                          f" duration_ms, metrics, config_id) VALUES ('profile_fetcher', 'PROFILE_FETCHER',"
                          f" 'SUCCESS', '{now}', '{now}', 1, '{{}}', 1)"))

    upgrade(url, "head")

    with get_engine(url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM asset_prices")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM brand_topics")).scalar_one() == 1
        assert conn.execute(text("SELECT config_id FROM job_execution_history")).scalar_one() == 1
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1  # back on for the app
    with pytest.raises(IntegrityError), get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO profile_entries (urn, status) VALUES ('ACoAABad', 'BOGUS')"))
    with pytest.raises(IntegrityError), get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO profile_entries (urn) VALUES ('ACoAADup'), ('ACoAADup')"))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_profile_fetcher_processes_an_entry_inserted_with_plain_sql(
    backend, app_env, monkeypatch, tmp_path, smtp_sink,
):
    url = app_env["DATABASE_URL"]
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fetcher.db'}"
        monkeypatch.setenv("DATABASE_URL", url)
        reload_settings()
        upgrade(url)
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO profile_entries (urn) VALUES ('ACoAAFromOutside')"))

    result = await profile_fetcher()

    assert result is not None and result.status == "SUCCESS"
    entry = entry_rows(url)["ACoAAFromOutside"]
    assert (entry.status, entry.fetch_count) == ("COMPLETED", 1)
    assert "ACoAAFromOutside" in profile_rows(url)
    assert history_rows(url)[-1].successful_count == 1
