"""The shared limiter in the database: what it books is what the rule says (the SQL on
PostgreSQL, Python on SQLite), two keys of one request are booked at one moment, and a waiter
whose windows change, or that was held up past its moment, gives that moment back."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import session_scope
from core.db.migrate import upgrade
from core.db.rate_limits import RateLimitKey
from core.http.limiter import next_slot, parse_windows
from core.http.shared_limiter import SharedBudget, SharedWindowLimiter


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, pg_url: str, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return pg_url
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    upgrade(url)
    return url


def _log(url: str, key: str) -> list[float]:
    with session_scope(url) as session:
        return list(session.execute(select(RateLimitKey.log).where(RateLimitKey.key == key)).scalar_one())


def _learned(url: str, key: str, windows: str) -> SharedWindowLimiter:
    limiter = SharedWindowLimiter(url, key, parse_windows(windows))
    limiter.record(key, windows, None)
    return limiter


@pytest.mark.parametrize("windows", ["3:1,5:4", "20:1,100:120", "300:10"])
async def test_the_database_books_what_the_rule_says(db_url: str, windows: str) -> None:
    key = f"test:{uuid.uuid4().hex[:8]}"
    limiter = _learned(db_url, key, windows)
    slots, clocks = [], []
    for _ in range(12):
        before = time.time()  # the database's clock is this machine's
        slots.append((await limiter.reserve())[1])
        clocks.append((before, time.time()))
    log = _log(db_url, key)
    assert log == slots  # every booking in the log, in order
    rule = parse_windows(windows)
    for i, (before, after) in enumerate(clocks):
        # Each where the rule puts it after the ones before, at the moment it was booked.
        assert next_slot(log[:i], rule, before) - 1e-3 <= log[i] <= next_slot(log[:i], rule, after) + 1e-3


async def test_a_request_on_two_keys_is_booked_on_both_at_one_moment(db_url: str) -> None:
    app, first, second = (f"test:{uuid.uuid4().hex[:8]}" for _ in range(3))
    _learned(db_url, app, "5:1")
    _learned(db_url, first, "2:1")
    _learned(db_url, second, "100:1")
    one = SharedBudget(db_url, {app: [(5, 1.0)], first: [(2, 1.0)]})
    other = SharedBudget(db_url, {app: [(5, 1.0)], second: [(100, 1.0)]})
    booked = [(await budget.reserve())[1] for _ in range(4) for budget in (one, other)]
    app_log, first_log, second_log = _log(db_url, app), _log(db_url, first), _log(db_url, second)
    assert app_log == booked and sorted(first_log + second_log) == app_log  # the same moments
    # The strictest key of each request sets its moment: ``first`` allows one per 0.52 s.
    assert all(b - a >= 0.52 - 1e-6 for a, b in zip(first_log, first_log[1:], strict=False))
    assert all(b - a >= 0.208 - 1e-6 for a, b in zip(app_log, app_log[1:], strict=False))


async def test_a_waiter_whose_windows_change_books_again_under_the_new_ones(db_url: str) -> None:
    key = f"test:{uuid.uuid4().hex[:8]}"
    _learned(db_url, key, "1:10")
    waiter = SharedWindowLimiter(db_url, key, [(1, 10.0)])
    await waiter.acquire()  # the window's one request
    started = time.monotonic()
    second = asyncio.create_task(waiter.acquire())  # booked 10 s ahead
    await asyncio.sleep(0.3)
    assert len(_log(db_url, key)) == 2
    SharedWindowLimiter(db_url, key, [(1, 10.0)]).record(key, "10:1", None)  # the provider says more
    await asyncio.wait_for(second, timeout=3)
    assert time.monotonic() - started < 2.5  # not the 10 s it was booked for
    log = _log(db_url, key)
    assert len(log) == 2 and log[1] - log[0] < 2.5  # the moment 10 s ahead was given back


async def test_a_waiter_held_up_past_its_moment_gives_it_back_and_books_again(db_url: str) -> None:
    key = f"test:{uuid.uuid4().hex[:8]}"
    _learned(db_url, key, "4:1")
    held_up = SharedWindowLimiter(db_url, key, [(4, 1.0)])

    async def stalled_sleep(seconds: float) -> None:  # the process was descheduled meanwhile
        time.sleep(seconds + 0.2)

    await held_up.acquire()
    stalled = SharedWindowLimiter(db_url, key, [(4, 1.0)], sleep=stalled_sleep)
    await stalled.acquire()  # due 0.26 s later, woke 0.2 s after that
    log = _log(db_url, key)
    # The late moment is gone; its replacement was booked on waking, and is the log's second.
    assert len(log) == 2 and log[1] - log[0] >= 0.45
