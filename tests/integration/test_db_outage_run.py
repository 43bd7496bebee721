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


async def test_a_claim_that_committed_as_its_connection_dropped_is_given_back_and_fetched(
        app_env, rapidapi_sandbox, monkeypatch, caplog):
    """The ambiguous commit: the claim's transaction went through, its answer did not (the
    connection dropped as it committed), so the outage retry claims another batch. The entries
    of the lost claim are not left FETCHING with their reservation: the run gives them back and
    fetches them; every entry COMPLETED, nothing reserved, the ledger equal to the provider's."""
    import psycopg

    import tasks.profiles.stage as stage

    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(30))
    rapidapi_sandbox.update_knobs(latency_ms=20)
    caplog.set_level(logging.WARNING)
    real, lost = stage.claim_batch, []

    def claim_then_drop(*args, **kwargs):
        claim = real(*args, **kwargs)
        if not lost:  # the second claim of the run: committed, then the connection dropped
            if getattr(claim_then_drop, "calls", 0) == 1:
                lost.extend(e.id for e in claim.entries)
                raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
            claim_then_drop.calls = 1  # type: ignore[attr-defined]
        return claim

    monkeypatch.setattr(stage, "claim_batch", claim_then_drop)
    result = await profile_fetcher(batch_size=5)

    assert len(lost) == 5
    assert result is not None and result.status == "SUCCESS", result
    rows = entry_rows(url)
    assert {e.status for e in rows.values()} == {"COMPLETED"}, {u: e.status for u, e in rows.items()}
    q = ledger(url)
    assert q.reserved == 0 and q.calls_used == rapidapi_sandbox.stats()["monthly_used"] == 30, (q.reserved, q.calls_used)
    [run] = history_rows(url)
    assert run.status == "SUCCESS" and run.total_processed == 30, (run.status, run.total_processed)
    said = [r.getMessage() for r in caplog.records]
    assert any("claim whose answer was lost" in m for m in said), said


async def test_a_batch_write_that_committed_as_its_connection_dropped_is_not_settled_twice(
        app_env, rapidapi_sandbox, monkeypatch):
    """The batch's write (profiles, statuses and its grant's settlement in one transaction)
    committed, its answer did not arrive, and the outage retry runs it again: the grant is
    settled once, so nothing is left reserved or counted twice."""
    import psycopg

    import tasks.profiles.batch as batch

    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(20))
    rapidapi_sandbox.update_knobs(latency_ms=20)
    real, dropped = batch._write, []

    def write_then_drop(*args, **kwargs):
        out = real(*args, **kwargs)
        if not dropped:
            dropped.append(True)
            raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
        return out

    monkeypatch.setattr(batch, "_write", write_then_drop)
    result = await profile_fetcher(batch_size=5)

    assert dropped and result is not None and result.status == "SUCCESS", result
    assert {e.status for e in entry_rows(url).values()} == {"COMPLETED"}
    q = ledger(url)
    assert q.reserved == 0 and q.calls_used == rapidapi_sandbox.stats()["monthly_used"] == 20, (q.reserved, q.calls_used)
