"""A 200 whose body is cut off reached the provider, which bills it (issue 19 item 3): it is
retried at most once and counted both times, so the ledger equals the provider's count."""

from __future__ import annotations

from flows.profiles import profile_fetcher
from tests.factories import entry_rows, ledger, seed_entries, urns


async def test_a_cut_off_200_is_retried_once_and_billed_every_time(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    healthy, cut_once, cut_always = [*urns(3), "ACoAACutOnce", "ACoAACutAlways"][:3], "ACoAACutOnce", "ACoAACutAlways"
    seed_entries(url, [*healthy, cut_once, cut_always])
    rapidapi_sandbox.update_knobs(truncate_first={cut_once: 1, cut_always: 99})

    result = await profile_fetcher(batch_size=5)

    rows = entry_rows(url)
    assert rows[cut_once].status == "COMPLETED"  # the retry got the whole body
    # Cut off twice: a dropped answer is "later", not "never" (PENDING again, not before a while).
    assert rows[cut_always].status == "PENDING" and "deferred: network error: HTTP 200 answer cut off" \
        in rows[cut_always].error_message
    stats = rapidapi_sandbox.stats()
    assert stats["per_urn"][cut_once] == 2 and stats["per_urn"][cut_always] == 2  # one retry each, no more
    # The provider billed 3 + 2 + 2 answers of HTTP 200; so does the ledger, and the run's record.
    assert stats["monthly_used"] == 7
    assert ledger(url).calls_used == 7
    assert result is not None and result.status == "PARTIAL"
