"""Database tasks retry on outages only: a lost connection yes, a constraint violation no."""

from __future__ import annotations

from prefect.states import Completed, Failed
from sqlalchemy.exc import IntegrityError, OperationalError

from tasks._common import retry_on_db_outage


def _failed(exc: Exception) -> object:
    return Failed(data=exc)


def test_retry_only_when_the_database_was_unreachable():
    outage = OperationalError("SELECT 1", {}, Exception("connection refused"))
    violation = IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert retry_on_db_outage(None, None, _failed(outage)) is True
    assert retry_on_db_outage(None, None, _failed(violation)) is False
    assert retry_on_db_outage(None, None, _failed(ValueError("bug"))) is False
    assert retry_on_db_outage(None, None, Completed(data=1)) is False


async def test_the_condition_also_works_inside_an_event_loop():
    outage = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert retry_on_db_outage(None, None, _failed(outage)) is True
