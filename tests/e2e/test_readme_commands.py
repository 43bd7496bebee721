"""README.md's shell commands, run as a user types them: in a subprocess, from the project root.

The commands are read from README.md itself, so the test follows the text: if the README
changes the command, this runs the new one; if it drops it, the test says so.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from core.config import PROJECT_ROOT
from tests.conftest import PG_ADMIN_URL

README = (PROJECT_ROOT / "README.md").read_text()
HEAD_TABLES = {"profile_entries", "api_quota_ledger", "job_execution_history", "jobs", "riot_players",
               "brands", "assets", "cron_job_configs", "job_configurations", "scheduled_jobs"}


def readme_command(pattern: str) -> str:
    """The README's command matching ``pattern`` (in a code block or inline code), as written."""
    block = re.search(rf"^(?:\$ )?({pattern})\s*(?:#.*)?$", README, re.MULTILINE)
    inline = re.search(rf"`({pattern})`", README)
    found = block or inline
    assert found, f"README.md no longer documents a command matching {pattern!r}"
    return found.group(1).strip()


def run(command: str, env: dict[str, str], cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{command!r} failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


def user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A shell environment without the test session's app settings (a user's fresh shell)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "STORAGE_", "DATA_DIR", "PYTHONPATH", "CONFIG_FILE"))}
    return env | {"DATA_DIR": str(tmp_path / "data")} | extra


def migrated_tables(url: str) -> tuple[set[str], str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        return set(inspect(engine).get_table_names()), version
    finally:
        engine.dispose()


def head_revision() -> str:
    versions = PROJECT_ROOT / "core" / "db" / "migrations" / "versions"
    return max(p.name.split("_", 1)[0] for p in versions.glob("[0-9]*.py"))


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty PostgreSQL database (not migrated), dropped after the test."""
    name = f"jobpipes_readme_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ALEMBIC = readme_command(r"uv run alembic upgrade head")


def test_alembic_upgrade_head_on_a_fresh_postgresql_database(fresh_pg_url, tmp_path):
    run(ALEMBIC, user_env(tmp_path, DATABASE_URL=fresh_pg_url))

    tables, version = migrated_tables(fresh_pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    assert HEAD_TABLES <= tables
    assert version == head_revision()


def test_alembic_upgrade_head_on_the_default_sqlite_database(tmp_path):
    """No DATABASE_URL: the README's default, SQLite under the data directory."""
    env = user_env(tmp_path)
    run(ALEMBIC, env)
    run(ALEMBIC, env)  # a second upgrade is a no-op

    db = tmp_path / "data" / "jobpipes.db"
    assert db.exists()
    tables, version = migrated_tables(f"sqlite:///{db}")
    assert HEAD_TABLES <= tables and version == head_revision()


def test_alembic_upgrade_head_with_an_explicit_sqlite_url(tmp_path):
    db = tmp_path / "explicit.db"
    run(ALEMBIC, user_env(tmp_path, DATABASE_URL=f"sqlite:///{db}"))
    assert HEAD_TABLES <= migrated_tables(f"sqlite:///{db}")[0]


def test_env_keys_command_lists_every_variable(tmp_path):
    command = readme_command(r"uv run python -c '[^'`]*ENV_KEYS[^'`]*'")
    assert shlex.split(command)[:4] == ["uv", "run", "python", "-c"]

    out = run(command, user_env(tmp_path)).stdout

    for key in ("DATABASE_URL", "CRON_QUOTA_RESET_SCHEDULE", "RAPIDAPI_KEY", "SMTP_STARTTLS"):
        assert key in out
