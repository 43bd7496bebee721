"""Every family's FAILED run e-mails its earlier per-item errors ({"item", "error"}, issue 12 item 6).

The reported crash: a FAILED Riot run with per-player errors broke its e-mail (the template
read ``e["urn"]``) and the e-mail was lost after two retries.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage

import pytest
from sqlalchemy import update

from core.brands import repo as brand_repo
from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.db.types import utcnow
from core.errors import JobRunFailed
from core.riot.client import reset_pacers
from core.riot.config import DEFAULT_CONFIGS
from core.riot.models import RiotPlayer
from flows.brands import brand_job
from flows.crypto import contract_addresses_collection, top_coins_collection
from flows.profiles import profile_fetcher
from flows.riot import tracked_player_updater
from sandbox.riot import RiotSandbox, create_app, puuid_of
from sandbox.server import start_in_thread
from tests.conftest import reload_settings
from tests.factories import history_rows, seed_entries


def only_mail(sink: object, job_name: str) -> str:
    """The one e-mail of ``job_name``'s run, FAILED, as text."""
    mails: list[EmailMessage] = [m for m in sink.messages if f"] {job_name} " in m["Subject"]]
    assert len(mails) == 1, [m["Subject"] for m in sink.messages]
    assert "FAILED" in mails[0]["Subject"]
    return mails[0].get_content()


def lists_errors(body: str, errors: list[dict[str, str]]) -> None:
    """The body's error list names every item with its error, as the history row has them."""
    assert errors and f"Errors ({len(errors)}):" in body
    for e in errors:
        assert f"  - {e['item']}: {e['error'].splitlines()[0]}" in body


@pytest.fixture(scope="module")
def riot_sandbox():
    sandbox = RiotSandbox()
    with start_in_thread(create_app(sandbox)) as server:
        sandbox.url = server.url
        yield sandbox


async def test_riot_failure_email_lists_the_players_that_failed_before(app_env, riot_sandbox, smtp_sink,
                                                                       monkeypatch):
    url = app_env["DATABASE_URL"]
    monkeypatch.setenv("RIOT_BASE_URL_TEMPLATE", riot_sandbox.url + "/{route}")
    reload_settings()
    reset_pacers()
    riot_sandbox.reset()
    broken, next_one = puuid_of("Broken#NA1"), puuid_of("Revoked#NA1")
    with session_scope(url) as session:
        session.execute(update(JobConfiguration).where(JobConfiguration.job_type == "TRACKED_PLAYER_UPDATER")
                        .values(config_json=DEFAULT_CONFIGS["TRACKED_PLAYER_UPDATER"], is_active=True))
        for i, puuid in enumerate((broken, next_one)):  # the broken player is taken first
            session.add(RiotPlayer(puuid=puuid, platform="na1", is_tracked=True, matches_fetched=0,
                                   next_match_offset=0, is_exhausted=False,
                                   discovered_at=utcnow().replace(year=2020 + i), updated_at=utcnow()))
    # The first player's match list answers 500 (twice: one transient retry), then the key
    # is revoked: the next player's first call gets a 403 and the run FAILS.
    riot_sandbox.update_knobs(server_error_puuids=[broken], revoke_key_after=2)
    with pytest.raises(JobRunFailed, match="403"):
        await tracked_player_updater()
    [row] = history_rows(url)
    assert row.status == "FAILED" and row.api_calls_made == 3
    assert [e["item"] for e in row.metrics["errors"]] == [broken]
    body = only_mail(smtp_sink, "tracked_player_updater")
    lists_errors(body, row.metrics["errors"])
    assert "Run error:" in body and "403" in body
    reset_pacers()


async def test_profiles_failure_email_lists_the_entries_that_failed(app_env, rapidapi_sandbox, smtp_sink):
    url = app_env["DATABASE_URL"]
    gone = ["ACoAAGone00001", "ACoAAGone00002"]
    seed_entries(url, gone)
    rapidapi_sandbox.update_knobs(missing_urns=gone)  # every processed entry fails: FAILED
    with pytest.raises(JobRunFailed):
        await profile_fetcher(batch_size=5)
    [row] = history_rows(url)
    assert row.status == "FAILED" and sorted(e["item"] for e in row.metrics["errors"]) == gone
    lists_errors(only_mail(smtp_sink, "profile_fetcher"), row.metrics["errors"])


async def test_crypto_failure_email_lists_the_assets_that_failed_before(app_env, coingecko_sandbox, smtp_sink):
    url = app_env["DATABASE_URL"]
    await top_coins_collection(limit=60)  # two chunks of contract lookups (50 + 10)
    smtp_sink.clear()
    # Two coins vanish in the first chunk; then the key is revoked: the second chunk's 401 FAILS the run.
    coingecko_sandbox.update_knobs(missing_ids=["tether", "solana"], revoke_key_after=coingecko_sandbox.total + 50)
    with pytest.raises(JobRunFailed, match="401"):
        await contract_addresses_collection(limit=60)
    row = history_rows(url)[-1]
    assert row.status == "FAILED" and sorted(e["item"] for e in row.metrics["errors"]) == ["solana", "tether"]
    lists_errors(only_mail(smtp_sink, "contract_addresses_collection"), row.metrics["errors"])


async def test_brands_failure_email_lists_the_failed_executions(brand_env, collectors_sandbox, smtp_sink):
    url = brand_env["DATABASE_URL"]
    customer = uuid.uuid4()
    with session_scope(url) as session:
        brand = brand_repo.add_brand(session, customer_id=customer, name="Acme CRM", competitors=["Globex"],
                                     topics={"crm": ["best CRM for a small business", "cheapest CRM"]})
        brand_id = str(brand.id)
    collectors_sandbox.update_knobs(fail_collectors=["perplexity"])
    with pytest.raises(JobRunFailed):
        await brand_job(brand_id, str(customer), "data_collection", metadata={"collectors": ["perplexity"]})
    row = history_rows(url)[-1]
    assert row.status == "FAILED" and len(row.metrics["errors"]) == 2
    assert all(e["item"].startswith("perplexity: ") for e in row.metrics["errors"])
    lists_errors(only_mail(smtp_sink, "brand_data_collection"), row.metrics["errors"])


async def test_a_run_whose_history_row_cannot_be_written_still_sends_its_email(app_env, coingecko_sandbox,
                                                                             smtp_sink, monkeypatch):
    """Issue 22 item 5: the history is the record, the e-mail the alert; losing one must not
    lose the other. The e-mail says the row is missing, and the run fails."""
    async def broken(record: object) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr("tasks.runs.record_history", broken)
    with pytest.raises(RuntimeError, match="database is down"):
        await top_coins_collection(limit=3)
    body = only_mail(smtp_sink, "top_coins_collection")
    assert "history row not written: RuntimeError: database is down" in body
    assert history_rows(app_env["DATABASE_URL"]) == []


async def test_a_failure_to_start_the_shares_is_a_failed_run_with_its_email(app_env, rapidapi_sandbox,
                                                                               smtp_sink, monkeypatch):
    """Issue 22 item 5: starting the run's shares is inside the run's error handling."""
    async def refused(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("Prefect refused the helper runs")

    monkeypatch.setattr("flows.profiles.start_shares", refused)
    seed_entries(app_env["DATABASE_URL"], ["ACoAAHelp00001"])
    with pytest.raises(JobRunFailed):
        await profile_fetcher(batch_size=5, parallel_runs=2)
    [row] = history_rows(app_env["DATABASE_URL"])
    assert row.status == "FAILED" and "Prefect refused the helper runs" in row.error_summary
    assert "Prefect refused the helper runs" in only_mail(smtp_sink, "profile_fetcher")
