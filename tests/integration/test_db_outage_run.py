"""A 10-second database outage in the middle of a profile-fetcher run (issue 19 item 1): the run
waits it out and ends SUCCESS, every entry COMPLETED, the ledger equal to the provider's count.

The app database is reached through a TCP proxy that is closed (every connection dropped,
new ones refused) for 10 s and opened again: the test PostgreSQL itself is never stopped."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import make_url

from core.db.engine import dispose_engines
from flows.profiles import profile_fetcher
from tests.conftest import reload_settings
from tests.factories import entry_rows, history_rows, ledger, seed_entries, urns
from tests.faults import TcpProxy


async def test_a_ten_second_database_outage_mid_run_is_waited_out(app_env, rapidapi_sandbox, monkeypatch, caplog):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(60))
    parsed = make_url(url)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    monkeypatch.setenv("DATABASE_URL", parsed.set(port=proxy.port).render_as_string(hide_password=False))
    reload_settings()
    rapidapi_sandbox.update_knobs(latency_ms=100)
    caplog.set_level(logging.WARNING)

    async def outage() -> None:
        while sum(e.status == "COMPLETED" for e in entry_rows(url).values()) < 10:
            await asyncio.sleep(0.1)
        proxy.down()
        await asyncio.sleep(10)
        proxy.up()

    try:
        cut = asyncio.create_task(outage())
        result = await profile_fetcher(batch_size=5)
        await cut
    finally:
        proxy.close()
        dispose_engines()

    assert result is not None and result.status == "SUCCESS", result
    assert {e.status for e in entry_rows(url).values()} == {"COMPLETED"}
    assert ledger(url).calls_used == rapidapi_sandbox.stats()["monthly_used"] == 60
    [run] = history_rows(url)
    assert run.status == "SUCCESS" and run.total_processed == 60
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("database unavailable during ") for m in said)
    assert any(m.startswith("database back after ") for m in said)
