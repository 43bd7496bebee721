"""A shared limiter whose database goes away for 10 s waits it out and carries on; past its
outage budget it raises. The outage is real: the limiter reaches PostgreSQL through a TCP
proxy (``tests.faults.TcpProxy``) that is taken down and brought back."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core.db import session_scope
from core.db.outage import is_db_outage
from core.db.rate_limits import RateLimitKey
from core.http.shared_limiter import SharedWindowLimiter
from tests.faults import TcpProxy


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    parsed = make_url(pg_url)
    tcp = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    yield tcp
    tcp.close()


def _through(pg_url: str, proxy: TcpProxy) -> str:
    return make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


async def test_a_ten_second_outage_is_waited_out_and_the_budget_carries_on(pg_url, proxy, caplog):
    url, key = _through(pg_url, proxy), f"test:{uuid.uuid4().hex[:8]}"
    limiter = SharedWindowLimiter(url, key, [(50, 1.0)], configured=True, outage_budget=60)
    for _ in range(3):
        await limiter.acquire()
    caplog.set_level(logging.WARNING, logger="jobpipes.db")
    proxy.down()
    started = time.monotonic()
    waiting = asyncio.gather(*(limiter.acquire() for _ in range(3)))
    await asyncio.sleep(10)
    assert not waiting.done()  # no permit without the database, and no error either
    proxy.up()
    await asyncio.wait_for(waiting, timeout=30)
    assert time.monotonic() - started >= 10
    await limiter.acquire()  # and on it goes
    with session_scope(pg_url) as session:
        log = session.execute(select(RateLimitKey.log).where(RateLimitKey.key == key)).scalar_one()
    assert len(log) >= 7  # every permit booked (a booking whose answer the outage cut may be twice)
    lines = [r.getMessage() for r in caplog.records if r.name == "jobpipes.db"]
    assert any(line.startswith("database unavailable during a rate-limit permit") for line in lines), lines
    assert any(line.startswith("database back after ") for line in lines), lines


async def test_past_its_outage_budget_the_limiter_raises(pg_url, proxy):
    url = _through(pg_url, proxy)
    limiter = SharedWindowLimiter(url, f"test:{uuid.uuid4().hex[:8]}", [(50, 1.0)], configured=True,
                                  outage_budget=2)
    await limiter.acquire()
    proxy.down()
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        await limiter.acquire()
    assert is_db_outage(info.value)
    assert 2 <= time.monotonic() - started < 15
