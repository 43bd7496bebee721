"""``tasks._common.ride_out_db``, the one mechanism every run's database steps share (issue 19
item 1): a database that cannot be reached is waited out within the budget, with one line
when the outage starts and one when it ends; past the budget the error is raised.

The outage is real: the database URL points at a loopback port where nothing listens until a
TCP proxy to the test PostgreSQL opens there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from core.db.engine import get_engine
from tasks._common import ride_out_db
from tests.conftest import free_port


async def _proxy(port: int, target: tuple[str, int]) -> asyncio.Server:
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    return await asyncio.start_server(handle, "127.0.0.1", port)


def _url_through(pg_url: str, port: int) -> str:
    return make_url(pg_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


async def test_an_outage_is_waited_out_within_the_budget_with_a_line_at_each_end(pg_url, caplog):
    port = free_port()
    url = _url_through(pg_url, port)

    def probe() -> int:
        with get_engine(url).connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())

    async def back_after(seconds: float) -> asyncio.Server:
        await asyncio.sleep(seconds)
        parsed = make_url(pg_url)
        return await _proxy(port, (parsed.host or "127.0.0.1", parsed.port or 5432))

    caplog.set_level(logging.WARNING, logger="jobpipes.db")
    started = time.monotonic()
    opening = asyncio.create_task(back_after(3))
    try:
        assert await ride_out_db(probe, what="the probe", budget=30) == 1
    finally:
        (await opening).close()
    assert time.monotonic() - started >= 3
    lines = [r.getMessage() for r in caplog.records if r.name == "jobpipes.db"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unavailable during the probe") and "waiting up to 30 s" in lines[0]
    assert lines[1].startswith("database back after ") and lines[1].endswith("(the probe)")


async def test_past_the_budget_the_outage_is_raised(pg_url):
    url = _url_through(pg_url, free_port())  # nothing ever listens there

    def probe() -> None:
        with get_engine(url).connect():
            pass

    started = time.monotonic()
    with pytest.raises(OperationalError):
        await ride_out_db(probe, what="the probe", budget=2)
    assert 2 <= time.monotonic() - started < 15
