"""core.frames on PostgreSQL, filled by the real flows and repositories; and once on SQLite."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text, update

from core import frames
from core.brands import repo as brands_repo
from core.brands.models import JobRunStatus
from core.db import session_scope
from core.db.engine import get_engine
from core.db.job_configurations import JobConfiguration
from core.db.migrate import upgrade
from core.db.types import utcnow
from core.jobqueue import repo as queue_repo
from core.jobqueue import start_job
from core.jobqueue.examples import BuildReportJob, SendEmailJob
from core.jobqueue.models import JobStatus
from core.jobqueue.registry import type_name
from core.profiles.models import EntryStatus
from core.riot.client import reset_pacers
from core.riot.config import DEFAULT_CONFIGS
from core.riot.models import RiotPlayer
from core.runs.history import RunRecord, record_run
from core.runs.models import RunStatus
from flows.brands import brand_job
from flows.crypto import price_collection, top_coins_collection
from flows.profiles import profile_fetcher
from flows.riot import ban_checker, smurf_analyzer, tracked_player_updater
from sandbox.riot import plays_like_smurf, puuid_of
from tests.conftest import reload_settings
from tests.factories import seed_entries, set_quota, urns

UTC_NS = "datetime64[ns, UTC]"


def assert_typed(frame: pd.DataFrame, status: str | None = None, vocabulary: object = None) -> None:
    """Every ``*_at``/``timestamp`` column tz-aware UTC; ``status`` categorical over ``vocabulary``."""
    for name in frame.columns:
        if name.endswith("_at") or name == "timestamp":
            assert str(frame[name].dtype) == UTC_NS, (name, frame[name].dtype)
    if status is not None:
        assert isinstance(frame[status].dtype, pd.CategoricalDtype)
        assert list(frame[status].cat.categories) == [str(v) for v in vocabulary]  # type: ignore[attr-defined]


def assert_same_shape(empty: pd.DataFrame, full: pd.DataFrame) -> None:
    assert empty.empty and not full.empty
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()


async def test_crypto_jobs_give_run_history_and_prices_over_time(app_env, monkeypatch):
    first, second = datetime(2026, 3, 1, 9, 0, 10, tzinfo=UTC), datetime(2026, 3, 1, 9, 15, 10, tzinfo=UTC)
    monkeypatch.setattr("tasks.crypto.utcnow", lambda: first)  # mock time: two price observations
    assert (await top_coins_collection(limit=5)).status == "SUCCESS"
    assert (await price_collection(limit=5)).status == "SUCCESS"
    monkeypatch.setattr("tasks.crypto.utcnow", lambda: second)
    assert (await price_collection(limit=5)).status == "SUCCESS"
    yesterday = utcnow() - timedelta(days=1)
    with session_scope(app_env["DATABASE_URL"]) as session:  # an older failed run, from the repository
        record_run(session, RunRecord(job_name="price_collection", job_type="PRICE_COLLECTION", status="FAILED",
                                      started_at=yesterday, finished_at=yesterday + timedelta(seconds=1),
                                      error_summary="HTTP 401", quota_remaining=7))

    runs = frames.run_history()
    assert_typed(runs, "status", RunStatus)
    assert list(runs["job_name"]) == ["price_collection", "price_collection", "top_coins_collection",
                                      "price_collection"]  # newest first
    assert runs["started_at"].is_monotonic_decreasing
    assert runs["duration_ms"].dtype == "Int64" and (runs["duration_ms"] >= 0).all()
    assert runs["quota_remaining"].dtype == "Int64" and runs["quota_remaining"].isna().sum() == 3
    assert runs["error_summary"].iloc[-1] == "HTTP 401"

    prices_runs = frames.run_history(job="price_collection")
    assert len(prices_runs) == 3 and set(prices_runs["job_name"]) == {"price_collection"}
    assert list(frames.run_history(job="price_collection", status="failed")["error_summary"]) == ["HTTP 401"]
    assert len(frames.run_history(status=RunStatus.SUCCESS)) == 3
    cut = yesterday + timedelta(hours=1)
    recent = frames.run_history(since=cut)
    assert len(recent) == 3 and (recent["started_at"] >= pd.Timestamp(cut)).all()
    assert list(frames.run_history(until=cut.isoformat())["status"]) == ["FAILED"]
    assert len(frames.run_history(limit=2)) == 2
    assert_same_shape(frames.run_history(job="no_such_job"), runs)

    prices = frames.coin_prices()
    assert_typed(prices)
    assert len(prices) == 10 and prices["price_usd"].dtype == "float64" and (prices["price_usd"] > 0).all()
    assert sorted(set(prices["timestamp"])) == [pd.Timestamp("2026-03-01T09:00Z"), pd.Timestamp("2026-03-01T09:15Z")]
    symbol = prices["symbol"].iloc[0]
    one = frames.coin_prices(symbol=symbol.lower())
    assert len(one) == 2 and set(one["symbol"]) == {symbol} and one["timestamp"].is_monotonic_increasing
    assert len(frames.coin_prices(symbol=[symbol, prices["symbol"].iloc[1]], since="2026-03-01T09:10:00Z")) == 2
    assert len(frames.coin_prices(until=datetime(2026, 3, 1, 9, 10))) == 5  # naive: UTC
    assert_same_shape(frames.coin_prices(symbol="nothing-like-this"), prices)


async def test_profile_entries_and_the_quota_ledger_after_a_fetch(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    good, missing = urns(3), "ACoAATestGone"
    seed_entries(url, [*good, missing])
    set_quota(url, limit=100, used=10)
    rapidapi_sandbox.update_knobs(missing_urns=[missing])
    await profile_fetcher(batch_size=10)

    entries = frames.profile_entries()
    assert_typed(entries, "status", EntryStatus)
    assert dict(entries["status"].value_counts()) == {"COMPLETED": 3, "FAILED": 1, "PENDING": 0, "FETCHING": 0}
    failed = frames.profile_entries(status="failed")
    assert list(failed["urn"]) == [missing] and "404" in failed["error_message"].iloc[0]
    assert entries["fetch_count"].dtype == "Int64"
    assert_same_shape(frames.profile_entries(status="PENDING"), entries)

    ledger = frames.quota_ledger(provider="rapidapi")
    assert_typed(ledger)
    [row] = ledger.to_dict("records")
    assert (row["monthly_limit"], row["calls_used"], row["reserved"]) == (100, 13, 0)  # 10 + 3 HTTP 200s
    assert row["remaining"] == 87 and ledger["remaining"].dtype == "Int64"
    assert len(frames.quota_ledger(period=row["period"])) == 1
    assert_same_shape(frames.quota_ledger(provider="coingecko"), ledger)


async def test_riot_players_carry_their_verdict_and_signals(app_env, riot_api_sandbox, monkeypatch):
    url = app_env["DATABASE_URL"]
    monkeypatch.setenv("RIOT_BASE_URL_TEMPLATE", riot_api_sandbox.url + "/{route}")
    monkeypatch.setenv("RIOT_API_KEY", "RGAPI-sandbox")
    reload_settings()
    reset_pacers()
    riot_api_sandbox.reset()
    candidates = [f"FramesPlayer{i}#NA1" for i in range(200)]
    smurf = next(n for n in candidates if plays_like_smurf(puuid_of(n)))
    normal = next(n for n in candidates if not plays_like_smurf(puuid_of(n)))
    now = utcnow()
    with session_scope(url) as session:
        for job_type, config in DEFAULT_CONFIGS.items():
            session.execute(update(JobConfiguration).where(JobConfiguration.job_type == job_type)
                            .values(config_json=config, is_active=True))
        session.execute(update(JobConfiguration).where(JobConfiguration.job_type == "TRACKED_PLAYER_UPDATER")
                        .values(config_json={"max_new_matches_per_player": 10, "max_tracked_players": 5}))
        for name in (smurf, normal):
            session.add(RiotPlayer(puuid=puuid_of(name), platform="na1", game_name=name.split("#")[0],
                                   tag_line="NA1", is_tracked=True, discovered_at=now, updated_at=now))
    try:
        for job in (tracked_player_updater, smurf_analyzer, ban_checker):
            assert (await job()).status == "SUCCESS"
    finally:
        reset_pacers()

    players = frames.riot_players()
    assert_typed(players)
    tracked = players[players["is_tracked"]].set_index("game_name")
    assert set(tracked.index) == {smurf.split("#")[0], normal.split("#")[0]}
    assert players["is_flagged"].dtype == "boolean" and players["score"].dtype == "float64"
    for name in frames.SIGNALS:
        assert players[name].dtype == "float64" and players[f"{name}_fired"].dtype == "boolean"
    flagged = tracked.loc[smurf.split("#")[0]]
    assert bool(flagged["is_flagged"]) and flagged["games"] == 10
    fired = [name for name in frames.SIGNALS if flagged[f"{name}_fired"]]
    assert fired and flagged["score"] >= 0.5 and 0 <= flagged["win_rate"] <= 1
    assert not bool(tracked.loc[normal.split("#")[0], "is_flagged"])
    scored = players["score"].dropna()  # highest score first, players not analysed last
    assert scored.is_monotonic_decreasing and players["score"].iloc[:len(scored)].notna().all()

    assert list(frames.riot_players(flagged=True)["puuid"]) == [puuid_of(smurf)]
    assert list(frames.riot_players(flagged=False)["puuid"]) == [puuid_of(normal)]
    assert len(frames.riot_players(tracked=True)) == 2
    discovered = frames.riot_players(tracked=False)  # the opponents the matches brought in
    assert discovered["is_flagged"].isna().all() and discovered["win_rate"].isna().all()

    checks = frames.ban_checks()
    assert_typed(checks, "verdict", frames.BAN_VERDICTS)
    [check] = checks.to_dict("records")
    assert (check["puuid"], check["game_name"]) == (puuid_of(smurf), smurf.split("#")[0])
    assert check["verdict"] in frames.BAN_VERDICTS and check["reason"] and check["platform"] == "na1"
    assert len(frames.ban_checks(verdict=check["verdict"].lower(), since=now - timedelta(minutes=5))) == 1
    assert_same_shape(frames.ban_checks(since=utcnow() + timedelta(days=1)), checks)
    assert_same_shape(frames.riot_players(flagged=True, tracked=False), players)


async def test_brand_scores_over_two_runs(brand_env):
    url = brand_env["DATABASE_URL"]
    customer = uuid.uuid4()
    with session_scope(url) as session:
        brand = brands_repo.add_brand(session, customer_id=customer, name="Acme CRM",
                                      competitors=["Globex", "Initech"],
                                      topics={"crm software": ["best CRM for a small business"]})
        brand_id = str(brand.id)
    for _ in range(2):
        result = await brand_job(brand_id, str(customer), "data_collection_and_scoring",
                                 metadata={"collectors": ["chatgpt", "perplexity"]})
        assert result.status == "SUCCESS"

    scores = frames.brand_scores("Acme CRM")
    assert_typed(scores)
    assert len(scores) == 6 and scores["job_run_id"].nunique() == 2  # 2 runs x (brand + 2 competitors)
    assert set(scores["brand_name"]) == {"Acme CRM", "Globex", "Initech"} and set(scores["brand"]) == {"Acme CRM"}
    own = scores[scores["is_own_brand"]]
    assert list(own["brand_name"]) == ["Acme CRM"] * 2 and own["computed_at"].is_monotonic_increasing
    for column in ("visibility", "share_of_voice", "first_mention_rate"):
        assert scores[column].dtype == "float64" and scores[column].between(0, 1).all()
    assert scores["answers"].dtype == "Int64" and (scores["answers"] == 2).all()
    assert frames.brand_scores(uuid.UUID(brand_id)).equals(scores)
    assert frames.brand_scores(brand_id).equals(frames.brand_scores())
    second_run = own["computed_at"].iloc[1]
    assert len(frames.brand_scores(brand_id, since=second_run)) == 3
    assert_same_shape(frames.brand_scores("Initrode"), scores)
    with session_scope(url) as session:  # the runs behind them
        statuses = session.execute(text("SELECT DISTINCT status FROM job_runs")).scalars().all()
    assert statuses == [JobRunStatus.COMPLETED.value]


def test_queue_jobs_by_status_and_full_or_short_type(app_env):
    url = app_env["DATABASE_URL"]
    with session_scope(url) as session:
        email = start_job(session, SendEmailJob(recipient_email="a@example.com", subject="Hi", body="Hello"))
        start_job(session, SendEmailJob(recipient_email="b@example.com", subject="Hi", body="Hello"))
        start_job(session, BuildReportJob(pages=2))
    with session_scope(url) as session:  # a worker's claim and outcome, through the repository
        [claimed] = queue_repo.claim(session, job_type=type_name(SendEmailJob), limit=1, worker="frames-test",
                                     type_limit=5)
        assert claimed.id == email
        assert queue_repo.finish(session, claimed.id, claimed.attempts, error="SMTP down")

    jobs = frames.queue_jobs()
    assert_typed(jobs, "status", JobStatus)
    assert len(jobs) == 3 and jobs["created_at"].is_monotonic_decreasing
    assert set(jobs["short_type"]) == {"SendEmailJob", "BuildReportJob"}
    [failed] = frames.queue_jobs(status="failed").to_dict("records")
    assert (failed["id"], failed["error_message"], failed["attempts"]) == (str(email), "SMTP down", 1)
    assert failed["duration_s"] >= 0 and failed["claimed_by"] == "frames-test"
    assert len(frames.queue_jobs(job_type="SendEmailJob")) == 2
    assert len(frames.queue_jobs(job_type=type_name(SendEmailJob))) == 2
    assert len(frames.queue_jobs(job_type="EmailJob")) == 0  # a class name, not a suffix of one
    assert len(frames.queue_jobs(status="Pending", job_type="SendEmailJob")) == 1
    assert len(frames.queue_jobs(since=utcnow() - timedelta(minutes=5), limit=2)) == 2
    pending = frames.queue_jobs(status="Pending")
    assert pending["duration_s"].isna().all() and pending["started_at"].isna().all()
    assert_same_shape(frames.queue_jobs(status="Cancelled"), jobs)


FUNCTIONS = [frames.run_history, frames.profile_entries, frames.quota_ledger, frames.riot_players,
             frames.ban_checks, frames.brand_scores, frames.coin_prices, frames.queue_jobs]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_an_empty_database_gives_typed_empty_frames(app_env, function):
    frame = function(url=app_env["DATABASE_URL"])
    assert frame.empty and len(frame.columns) >= 5
    assert_typed(frame)
    untyped = [name for name, dtype in frame.dtypes.items() if str(dtype) == "object"]
    assert set(untyped) <= {"metrics", "evidence", "job_data"}  # only JSON payloads stay objects


@pytest.mark.parametrize(("call", "argument", "allowed"), [
    (lambda: frames.run_history(status="DONE"), "status", list(RunStatus)),
    (lambda: frames.profile_entries(status="DONE"), "status", list(EntryStatus)),
    (lambda: frames.queue_jobs(status="SUCCESS"), "status", list(JobStatus)),
    (lambda: frames.ban_checks(verdict="BANNED"), "verdict", list(frames.BAN_VERDICTS)),
    (lambda: frames.run_history(since="last tuesday"), "since", ["ISO 8601"]),
    (lambda: frames.coin_prices(until="2026-13-45"), "until", ["ISO 8601"]),
    (lambda: frames.queue_jobs(since=12345), "since", ["ISO 8601"]),
    (lambda: frames.run_history(limit=0), "limit", ["positive integer"]),
    (lambda: frames.riot_players(flagged="yes"), "flagged", ["True", "False", "None"]),
], ids=["run-status", "entry-status", "job-status", "verdict", "since", "until", "since-type", "limit", "flag"])
def test_a_bad_filter_raises_value_error_naming_the_argument(app_env, call, argument, allowed):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert message.startswith(f"{argument}: ")
    assert all(str(value) in message for value in allowed), message


def test_sqlite_naive_datetimes_are_read_as_utc(tmp_path):
    path = tmp_path / "frames.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    # Plain SQL, as an outside writer would: created_at is the database's CURRENT_TIMESTAMP.
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO profile_entries (urn) VALUES ('ACoAAAEkwwAB9KEc')"))
    with session_scope(url) as session:
        started = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        record_run(session, RunRecord(job_name="price_collection", job_type="PRICE_COLLECTION", status="SUCCESS",
                                      started_at=started, finished_at=started + timedelta(seconds=2)))
    with sqlite3.connect(path) as raw:  # stored naive
        stored_created, = raw.execute("SELECT created_at FROM profile_entries").fetchone()
        stored_started, = raw.execute("SELECT started_at FROM job_execution_history").fetchone()
    assert "+" not in stored_created and "+" not in stored_started

    entries = frames.profile_entries(url=url)
    assert_typed(entries, "status", EntryStatus)
    assert list(entries["status"]) == ["PENDING"]
    assert abs(entries["created_at"].iloc[0] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)
    runs = frames.run_history(url=url)
    assert_typed(runs, "status", RunStatus)
    assert runs["started_at"].iloc[0] == pd.Timestamp("2026-03-01T09:30Z")
    assert runs["duration_ms"].iloc[0] == 2000
    assert len(frames.run_history(since="2026-03-01T09:30", until="2026-03-01T09:31", url=url)) == 1
