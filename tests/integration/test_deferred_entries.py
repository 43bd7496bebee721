"""An entry the provider refused for now (429 or 5xx after the retries) goes back to PENDING
with a not-before time, from Retry-After when given and capped by a setting (issue 19 item 5):
a later run takes it once the time has come, without a person."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from core.db import session_scope
from core.db.types import utcnow
from core.profiles.models import ProfileEntry
from flows.profiles import profile_fetcher
from tests.conftest import reload_settings
from tests.factories import entry_rows, ledger, seed_entries


async def test_later_stays_later_and_a_later_run_takes_it(app_env, rapidapi_sandbox, monkeypatch):
    url = app_env["DATABASE_URL"]
    busy, broken, fine = "ACoAABusy", "ACoAABroken5xx", "ACoAAFine"
    seed_entries(url, [busy, broken, fine])
    monkeypatch.setenv("RAPIDAPI_DEFER_MAX_SECONDS", "900")  # Retry-After says 3600: capped at 900
    reload_settings()
    rapidapi_sandbox.update_knobs(rate_limit_always=[busy], retry_after_seconds=3600,
                                  server_error_first={broken: 99})
    before = utcnow()

    first = await profile_fetcher(batch_size=5)

    rows = entry_rows(url)
    assert rows[fine].status == "COMPLETED"
    assert rows[busy].status == rows[broken].status == "PENDING"
    assert timedelta(seconds=899) <= rows[busy].not_before - before <= timedelta(seconds=960)  # capped
    assert timedelta(seconds=299) <= rows[broken].not_before - before <= timedelta(seconds=360)  # deferSeconds
    assert first is not None and first.status == "PARTIAL" and first.metrics.custom["deferred"] == 2
    assert "2 entries deferred" in (first.error or "")

    # Before their time, a run leaves them alone (no call made for them).
    calls = rapidapi_sandbox.stats()["total_requests"]
    assert (await profile_fetcher(batch_size=5)).status == "SUCCESS"
    assert rapidapi_sandbox.stats()["total_requests"] == calls

    # Their time has come and the provider answers again: the next run takes them.
    rapidapi_sandbox.update_knobs(rate_limit_always=[], server_error_first={})
    with session_scope(url) as session:
        session.execute(update(ProfileEntry).values(not_before=utcnow() - timedelta(seconds=1)))
    again = await profile_fetcher(batch_size=5)
    assert again is not None and again.status == "SUCCESS"
    assert {e.status for e in entry_rows(url).values()} == {"COMPLETED"}
    assert ledger(url).calls_used == rapidapi_sandbox.stats()["monthly_used"] == 3
