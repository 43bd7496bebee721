"""Session-wide real services: PostgreSQL database, Prefect harness, sandbox, moto, SMTP sink."""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from core.db.engine import dispose_engines, get_engine
from core.db.migrate import upgrade
from core.settings import get_settings
from tasks.storage import open_store

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
APP_TABLES = ["job_alerts", "fetch_shares", "rate_limit_permits", "rate_limit_keys", "brand_scores", "answer_citations", "answer_brand_scores", "collector_results", "job_runs", "generated_queries", "brand_topics", "brands", "riot_rank_snapshots", "ban_checks", "smurf_analyses", "riot_match_participants", "riot_matches", "riot_players", "jobs", "scheduled_jobs", "registrations", "asset_contracts", "asset_prices", "asset_rankings", "assets", "job_execution_history", "profiles", "profile_entries", "api_quota_ledger",
              "cron_job_configs"]


# Modules that use what only one test at a time may hold: the sandboxes' and the local Prefect
# server's default ports (`make demo`, `jobpipes up`, `deployments.dev.local_server`).
LOCAL_STACK_MODULES = {"test_stack", "test_example_notebook", "test_heartbeat", "test_notebook_server"}
# Modules whose assertions hold on a quiet machine only: throughput or a rate (two workers'
# speed-up, a shared budget drained near its minimum) and SIGKILLs whose ledger must equal the
# provider's count to the call (a kill between a request's mark and its first byte bills one
# call the provider never saw; that window widens on a loaded machine). Marked ``solo``:
# ``make test`` runs them after the rest, one at a time.
SOLO_MODULES = {"test_workers", "test_shared_riot_budget", "test_shared_limiter", "test_fault_matrix"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n``, ``--dist loadgroup``): a module's tests
    stay on one worker (its module fixtures start once), and the local-stack modules share
    one worker, one after the other. The e2e modules, mostly waiting on servers, run beside
    the rest."""
    # pytest-xdist schedules by node id: items sharing one (schemathesis' item per API
    # operation) would run once there, so they run in the solo pass, each of them.
    shared = {n for n, count in Counter(item.nodeid for item in items).items() if count > 1}
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else item.nodeid
        if module in SOLO_MODULES or item.nodeid in shared:
            item.add_marker(pytest.mark.solo)
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("local-stack" if module in LOCAL_STACK_MODULES
                                                    else item.nodeid.split("::", 1)[0]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head, dropped after."""
    name = f"jobpipes_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    dispose_engines()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=240):  # 240 s: a loaded machine
        yield


@pytest.fixture(scope="session")
def rapidapi_sandbox() -> Iterator[object]:
    from sandbox.rapidapi import RapidApiSandbox, create_app
    from sandbox.server import start_in_thread

    sandbox = RapidApiSandbox()
    server = start_in_thread(create_app(sandbox))
    sandbox.url = server.url  # type: ignore[attr-defined]
    yield sandbox
    server.stop()


@pytest.fixture(scope="session")
def coingecko_sandbox() -> Iterator[object]:
    from sandbox.coingecko import CoinGeckoSandbox, create_app
    from sandbox.server import start_in_thread

    sandbox = CoinGeckoSandbox()
    server = start_in_thread(create_app(sandbox))
    sandbox.url = server.url + "/api/v3"
    yield sandbox
    server.stop()


@pytest.fixture(scope="session")
def riot_api_sandbox() -> Iterator[object]:
    """The Riot sandbox (account, summoner, league, match routes) on a free port."""
    from sandbox.riot import RiotSandbox
    from sandbox.riot import create_app as riot_app
    from sandbox.server import start_in_thread

    sandbox = RiotSandbox()
    with start_in_thread(riot_app(sandbox)) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


@pytest.fixture(scope="session")
def collectors_sandbox() -> Iterator[object]:
    from sandbox.collectors import CollectorsSandbox, create_app
    from sandbox.server import start_in_thread

    sandbox = CollectorsSandbox()
    server = start_in_thread(create_app(sandbox))
    sandbox.url = server.url  # type: ignore[attr-defined]
    yield sandbox
    server.stop()


@pytest.fixture
def brand_env(app_env: dict[str, str], collectors_sandbox: object,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """app_env plus the three collectors pointed at the sandbox (knobs reset)."""
    url = collectors_sandbox.url  # type: ignore[attr-defined]
    extra = {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-sandbox-openai", "PERPLEXITY_BASE_URL": url,
             "PERPLEXITY_API_KEY": "pplx-sandbox", "SERPAPI_BASE_URL": url, "SERPAPI_API_KEY": "serp-sandbox",
             "BRAND_ADMIN_TOKEN": "admin-token-for-tests", "COLLECTORS_BACKOFF_MS": "5",
             "COLLECTORS_BACKOFF_MAX_MS": "20", "BRAND_MAX_RETRIES": "0"}
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    collectors_sandbox.reset()  # type: ignore[attr-defined]
    return app_env | extra


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[object]:
    from sandbox.smtp import start_smtp_sink

    sink = start_smtp_sink()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free port; returns its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _truncate(url: str) -> None:
    engine = get_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in APP_TABLES:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def app_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str, rapidapi_sandbox: object,
    coingecko_sandbox: object, smtp_sink: object, prefect_harness: None,
) -> Iterator[dict[str, str]]:
    """Environment of one flow test: PostgreSQL, the sandbox, SMTP sink, a local object folder.

    Tables are emptied and sandbox knobs reset before each test. Override any variable with
    ``monkeypatch.setenv`` and then call ``reload_settings()``.
    """
    env = {
        "DATABASE_URL": pg_url,
        "DATA_DIR": str(tmp_path / "data"),
        "STORAGE_URL": (tmp_path / "objects").as_uri(),
        "RAPIDAPI_BASE_URL": rapidapi_sandbox.url,  # type: ignore[attr-defined]
        "RAPIDAPI_KEY": "sandbox-key",
        "RAPIDAPI_RATE_LIMIT_BACKOFF_MS": "10",
        "RAPIDAPI_RATE_LIMIT_BACKOFF_MAX_MS": "50",
        "SMTP_HOST": smtp_sink.host,  # type: ignore[attr-defined]
        "SMTP_PORT": str(smtp_sink.port),  # type: ignore[attr-defined]
        "NOTIFY_EMAIL_TO": "ops@example.com",
        "COINGECKO_BASE_URL": coingecko_sandbox.url,  # type: ignore[attr-defined]
        "COINGECKO_API_KEY": "sandbox-cg-key",
        "COINGECKO_CALLS_PER_MINUTE": "6000",
        "COINGECKO_RATE_LIMIT_BACKOFF_MS": "10",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    _truncate(pg_url)
    rapidapi_sandbox.reset()  # type: ignore[attr-defined]
    coingecko_sandbox.reset()  # type: ignore[attr-defined]
    smtp_sink.clear()  # type: ignore[attr-defined]
    yield env
    reload_settings()


def reload_settings() -> None:
    get_settings.cache_clear()
    open_store.cache_clear()
