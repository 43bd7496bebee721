"""The four Riot jobs on PostgreSQL against the Riot sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.db import session_scope
from core.db.job_configurations import JobConfiguration
from core.db.types import utcnow
from core.errors import ConfigError, JobRunFailed, NotFoundError
from core.riot.client import reset_pacers
from core.riot.config import DEFAULT_CONFIGS
from core.riot.models import (
    BanCheck,
    RiotMatch,
    RiotMatchParticipant,
    RiotPlayer,
    RiotRankSnapshot,
    SmurfAnalysis,
)
from flows.riot import (
    add_tracked_player,
    ban_checker,
    match_fetcher,
    smurf_analyzer,
    tracked_player_updater,
)
from sandbox.riot import RiotKnobs, RiotSandbox, create_app, level_of, plays_like_smurf, puuid_of
from sandbox.server import start_in_thread
from tests.conftest import reload_settings
from tests.factories import history_rows


@pytest.fixture(scope="module")
def riot_sandbox():
    sandbox = RiotSandbox(RiotKnobs(app_limits="50:1,400:10"))
    with start_in_thread(create_app(sandbox)) as server:
        sandbox.url = server.url
        yield sandbox


@pytest.fixture
def riot_env(app_env, riot_sandbox, monkeypatch):
    monkeypatch.setenv("RIOT_BASE_URL_TEMPLATE", riot_sandbox.url + "/{route}")
    monkeypatch.setenv("RIOT_API_KEY", "RGAPI-sandbox")
    reload_settings()
    reset_pacers()
    riot_sandbox.reset()
    url = app_env["DATABASE_URL"]
    with session_scope(url) as session:  # the migration's defaults, small enough for tests
        for job_type, config in DEFAULT_CONFIGS.items():
            session.execute(update(JobConfiguration).where(JobConfiguration.job_type == job_type)
                            .values(config_json=config, is_active=True))
    yield url
    reset_pacers()


def configure(url: str, job_type: str, **changes: object) -> None:
    with session_scope(url) as session:
        row = session.execute(select(JobConfiguration).where(JobConfiguration.job_type == job_type)).scalar_one()
        row.config_json = {**row.config_json, **changes}


def track(url: str, *names: str, platform: str = "na1") -> list[str]:
    now = utcnow()
    puuids = [puuid_of(n) for n in names]
    with session_scope(url) as session:
        for puuid, name in zip(puuids, names, strict=True):
            session.add(RiotPlayer(puuid=puuid, platform=platform, game_name=name, tag_line="NA1", is_tracked=True,
                                   matches_fetched=0, next_match_offset=0, is_exhausted=False,
                                   discovered_at=now, updated_at=now))
    return puuids


def count(url: str, model: object) -> int:
    with session_scope(url) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


async def test_tracked_players_then_idempotent_rerun(riot_env, riot_sandbox):
    url = riot_env
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=5, max_tracked_players=2)
    track(url, "Alice#NA1", "Bob#NA1")
    first = await tracked_player_updater()
    assert first.status == "SUCCESS"
    assert count(url, RiotMatch) == 10 and count(url, RiotMatchParticipant) == 100
    assert count(url, RiotPlayer) > 2  # participants became discovered players
    assert first.metrics.custom["api_requests_made"] == 12  # 2 id lists + 10 matches
    assert first.metrics.custom["records_created"] == 110  # 10 matches + 100 participants

    again = await tracked_player_updater()
    assert again.metrics.custom["api_requests_made"] == 2  # only the id lists: nothing refetched
    assert again.metrics.custom["records_created"] == 0
    assert count(url, RiotMatch) == 10 and count(url, RiotMatchParticipant) == 100
    [run1, run2] = history_rows(url)
    assert (run1.status, run2.status, run2.api_calls_made) == ("SUCCESS", "SUCCESS", 2)
    assert riot_sandbox.match_id_types == {"ranked": 4}  # the default: no Arena, ARAM or co-op ids


async def test_a_429_mid_run_is_rate_limited_keeps_progress_and_resumes(riot_env, riot_sandbox):
    url = riot_env
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=8, max_tracked_players=2)
    track(url, "Carol#NA1", "Dave#NA1")
    riot_sandbox.update_knobs(force_429_after=6)
    stopped = await tracked_player_updater()
    assert stopped.status == "RATE_LIMITED" and stopped.success
    assert "retry after" in stopped.error
    kept = count(url, RiotMatch)
    assert kept == 5  # 1 id list + 5 matches answered before the 429
    assert history_rows(url)[0].status == "RATE_LIMITED"

    riot_sandbox.update_knobs(force_429_after=None)
    resumed = await tracked_player_updater()
    assert resumed.status == "SUCCESS" and count(url, RiotMatch) == 16
    match_paths = [p for p in riot_sandbox.requests if "/matches/NA1_" in p]
    assert all(riot_sandbox.requests[p] == 1 for p in match_paths)  # nothing fetched twice


async def test_match_fetcher_pages_discovered_players_until_their_target(riot_env, riot_sandbox):
    url = riot_env
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=1, max_tracked_players=1)
    track(url, "Erin#NA1")
    await tracked_player_updater()
    configure(url, "MATCH_FETCHER", discovered_players_per_run=3, matches_per_player_per_run=2,
              target_matches_per_player=2)
    result = await match_fetcher()
    assert result.status == "SUCCESS" and result.metrics.items_processed == 3
    with session_scope(url) as session:
        exhausted = session.execute(select(RiotPlayer).where(RiotPlayer.is_exhausted.is_(True))).scalars().all()
    assert len(exhausted) == 3 and all(p.next_match_offset == 2 for p in exhausted)


async def test_a_403_fails_the_run(riot_env, monkeypatch):
    url = riot_env
    track(url, "Frank#NA1")
    monkeypatch.setenv("RIOT_API_KEY", "RGAPI-revoked")
    reload_settings()
    with pytest.raises(JobRunFailed, match="403"):
        await tracked_player_updater()
    [row] = history_rows(url)
    assert row.status == "FAILED" and row.api_calls_made == 1  # the refused call counts too


async def test_config_errors_name_the_field(riot_env):
    with session_scope(riot_env) as session:
        session.execute(update(JobConfiguration).where(JobConfiguration.job_type == "MATCH_FETCHER")
                        .values(config_json={"platform": "na9", "discovered_players_per_run": "many"}))
    with pytest.raises(ConfigError) as info:
        await match_fetcher()
    message = str(info.value)
    assert "platform: Value error, unknown platform 'na9'" in message
    assert "discovered_players_per_run: Input should be a valid integer" in message
    assert "target_matches_per_player: Field required" in message


async def test_analyzer_flags_with_evidence_and_ban_checker_records_verdicts(riot_env, riot_sandbox):
    url = riot_env
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=12, max_tracked_players=6)
    configure(url, "SMURF_ANALYZER", min_matches_required=10, unanalyzed_players_per_run=50)
    puuids = track(url, *[f"Sus{i}#NA1" for i in range(6)])
    await tracked_player_updater()
    analyzed = await smurf_analyzer()
    n = analyzed.metrics.items_processed
    assert n >= 1 and analyzed.metrics.custom["api_requests_made"] == n  # one league-v4 call each
    with session_scope(url) as session:
        rows = {a.puuid: a for a in session.execute(select(SmurfAnalysis)).scalars()}
    assert set(rows) <= set(puuids) and rows
    one = next(iter(rows.values()))
    assert set(one.signals) == {"win_rate", "kda", "cs_per_minute", "low_level", "rank_climb", "level_vs_tier"}
    assert one.thresholds["kda"] == 3.5 and one.score == pytest.approx(
        sum(s["weight"] for s in one.signals.values() if s["fired"]))
    again = await smurf_analyzer()
    assert again.metrics.items_processed == 0  # nothing new to analyse

    with session_scope(url) as session:  # make every analysed player flagged for the check
        session.execute(update(SmurfAnalysis).values(is_flagged=True))
    banned = next(iter(rows))
    riot_sandbox.update_knobs(banned_puuids=[banned])
    checked = await ban_checker()
    verdicts = checked.metrics.custom["verdicts"]
    assert verdicts[banned] == "LIKELY_BANNED"
    assert all(v == "ACTIVE" for p, v in verdicts.items() if p != banned)
    with session_scope(url) as session:
        evidence = session.execute(select(BanCheck).where(BanCheck.puuid == banned)).scalar_one().evidence
    assert evidence["account"] is None and "404" in evidence["reason"]
    assert (await ban_checker()).metrics.items_processed == 0  # checked within ban_check_days


def flag(url: str, players: dict[str, str]) -> None:
    """Players (puuid -> platform) with a flagged analysis, due for a ban check."""
    now = utcnow()
    with session_scope(url) as session:
        for puuid, platform in players.items():
            session.add(RiotPlayer(puuid=puuid, platform=platform, is_tracked=False, matches_fetched=10,
                                   next_match_offset=10, is_exhausted=True, discovered_at=now, updated_at=now))
            session.add(SmurfAnalysis(puuid=puuid, games=10, score=0.9, is_flagged=True, signals={},
                                      thresholds={}, analyzed_at=now))


async def test_ban_checker_looks_each_player_up_on_their_own_platform(riot_env, riot_sandbox):
    url = riot_env
    na, euw = puuid_of("Home#NA1"), puuid_of("Away#EUW")
    flag(url, {na: "na1", euw: "euw1"})
    riot_sandbox.update_knobs(home_platforms={na: "na1", euw: "euw1"})
    checked = await ban_checker()
    assert checked.metrics.custom["verdicts"] == {na: "ACTIVE", euw: "ACTIVE"}
    paths = set(riot_sandbox.requests)
    assert f"/euw1/lol/summoner/v4/summoners/by-puuid/{euw}" in paths  # platform host
    assert f"/europe/riot/account/v1/accounts/by-puuid/{euw}" in paths  # its regional host
    assert f"/na1/lol/league/v4/entries/by-puuid/{na}" in paths
    with session_scope(url) as session:
        evidence = session.execute(select(BanCheck).where(BanCheck.puuid == euw)).scalar_one().evidence
    assert evidence["platform"] == "euw1" and evidence["summoner"]["puuid"] == euw


async def test_a_rate_limited_run_records_every_call_it_made(riot_env, riot_sandbox):
    url = riot_env
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=8, max_tracked_players=2)
    track(url, "Gina#NA1", "Hank#NA1")
    riot_sandbox.update_knobs(force_429_after=11)  # player 1: 1 + 8 calls; player 2: 1 + 1, then a 429
    stopped = await tracked_player_updater()
    assert stopped.status == "RATE_LIMITED"
    assert riot_sandbox.total == 12
    [row] = history_rows(url)
    assert row.api_calls_made == 12 and row.metrics["api_requests_made"] == 12

    flag(url, {puuid_of("Ivy#NA1"): "na1", puuid_of("Jo#NA1"): "na1"})
    riot_sandbox.reset()
    reset_pacers()
    riot_sandbox.update_knobs(force_429_after=4)  # 3 lookups for Ivy, 1 for Jo, then a 429
    checked = await ban_checker()
    assert checked.status == "RATE_LIMITED" and riot_sandbox.total == 5
    assert history_rows(url)[-1].api_calls_made == 5


async def test_platform_in_the_config_filters_players_and_unset_means_every_platform(riot_env, riot_sandbox):
    url = riot_env
    [na] = track(url, "Kim#NA1")
    [euw] = track(url, "Lou#EUW", platform="euw1")
    riot_sandbox.update_knobs(home_platforms={na: "na1", euw: "euw1"})
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=2, platform="euw1")
    only_euw = await tracked_player_updater()
    assert only_euw.metrics.items_processed == 1 and only_euw.metrics.custom["matches_stored"] == 2
    with session_scope(url) as session:
        assert set(session.execute(select(RiotMatch.platform)).scalars()) == {"euw1"}
    assert f"/europe/lol/match/v5/matches/by-puuid/{euw}/ids" in riot_sandbox.requests

    with session_scope(url) as session:  # no platform: every tracked player, each on their own region
        row = session.execute(select(JobConfiguration)
                              .where(JobConfiguration.job_type == "TRACKED_PLAYER_UPDATER")).scalar_one()
        row.config_json = {k: v for k, v in row.config_json.items() if k != "platform"}
    both = await tracked_player_updater()
    assert both.metrics.items_processed == 2 and both.metrics.custom["matches_stored"] == 2  # na1's two
    assert f"/americas/lol/match/v5/matches/by-puuid/{na}/ids" in riot_sandbox.requests

    configure(url, "MATCH_FETCHER", discovered_players_per_run=50, matches_per_player_per_run=1,
              target_matches_per_player=1, platform="kr")
    assert (await match_fetcher()).metrics.items_processed == 0  # nobody discovered on kr


async def test_add_tracked_player_by_riot_id(riot_env, riot_sandbox):
    url = riot_env
    added = await add_tracked_player("Zed Main#EUW", "EUW1")
    puuid = puuid_of("Zed Main#EUW")
    assert added == {"puuid": puuid, "game_name": "Zed Main", "tag_line": "EUW", "platform": "euw1",
                     "is_tracked": True, "created": True}
    assert "/europe/riot/account/v1/accounts/by-riot-id/Zed Main/EUW" in riot_sandbox.requests
    with session_scope(url) as session:  # a discovered player becomes tracked, progress kept
        session.add(RiotPlayer(puuid=puuid_of("Known#KR1"), platform="kr", is_tracked=False, matches_fetched=7,
                               next_match_offset=7, is_exhausted=False, discovered_at=utcnow(),
                               updated_at=utcnow()))
    assert (await add_tracked_player("Known#KR1", "kr"))["created"] is False
    assert "/asia/riot/account/v1/accounts/by-riot-id/Known/KR1" in riot_sandbox.requests
    with session_scope(url) as session:
        rows = {p.puuid: p for p in session.execute(select(RiotPlayer)).scalars()}
    assert (rows[puuid].is_tracked, rows[puuid].platform, rows[puuid].game_name) == (True, "euw1", "Zed Main")
    known = rows[puuid_of("Known#KR1")]
    assert (known.is_tracked, known.matches_fetched, known.tag_line) == (True, 7, "KR1")

    with pytest.raises(ValueError, match="^riot_id: expected 'gameName#tagLine'"):
        await add_tracked_player("NoTagHere", "na1")
    riot_sandbox.update_knobs(banned_puuids=[puuid_of("Ghost#NA1")])
    with pytest.raises(NotFoundError, match=r"^riot_id: no Riot account Ghost#NA1 \(account-v1 answered 404"):
        await add_tracked_player("Ghost#NA1", "na1")
    assert count(url, RiotPlayer) == 2
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=1, max_tracked_players=5)
    assert (await tracked_player_updater()).metrics.items_processed == 2  # both are now tracked


async def test_analyzer_snapshots_ranks_and_explains_the_rank_signals(riot_env, riot_sandbox):
    url = riot_env
    names = [f"Rank{i}#NA1" for i in range(100)]
    smurf_name = next(n for n in names if plays_like_smurf(puuid_of(n)))
    normal_name = next(n for n in names if not plays_like_smurf(puuid_of(n)))
    smurf, normal = track(url, smurf_name, normal_name)
    configure(url, "TRACKED_PLAYER_UPDATER", max_new_matches_per_player=10, max_tracked_players=2)
    await tracked_player_updater()
    with session_scope(url) as session:  # the smurf was Silver five days ago
        session.add(RiotRankSnapshot(puuid=smurf, queue="RANKED_SOLO_5x5", tier="SILVER", rank="IV",
                                     league_points=0, wins=5, losses=5, captured_at=utcnow() - timedelta(days=5)))
    configure(url, "SMURF_ANALYZER", min_matches_required=10, unanalyzed_players_per_run=10,
              thresholds={"rank_climb_divisions": 8, "rank_climb_window_days": 7}, weights={"rank_climb": 0.4})
    analyzed = await smurf_analyzer()
    assert analyzed.status == "SUCCESS" and analyzed.metrics.items_processed == 2
    assert analyzed.metrics.custom["api_requests_made"] == 2 and analyzed.metrics.custom["rank_snapshots"] == 2
    assert f"/na1/lol/league/v4/entries/by-puuid/{smurf}" in riot_sandbox.requests
    with session_scope(url) as session:
        rows = {a.puuid: a for a in session.execute(select(SmurfAnalysis)).scalars()}
        latest = session.execute(select(RiotRankSnapshot).where(RiotRankSnapshot.puuid == smurf)
                                 .order_by(RiotRankSnapshot.captured_at.desc())).scalars().first()
    assert count(url, RiotRankSnapshot) == 3 and latest.tier == "DIAMOND"
    climb, versus = rows[smurf].signals["rank_climb"], rows[smurf].signals["level_vs_tier"]
    assert climb["fired"] and climb["from"] == "SILVER IV" and climb["to"] == f"DIAMOND {latest.rank}"
    assert climb["value"] >= 16 and climb["weight"] == 0.4 and climb["snapshots"] == 2
    assert versus == {"value": level_of(smurf), "tier": f"DIAMOND {latest.rank}", "fired": True, "weight": 0.2}
    assert rows[smurf].thresholds["rank_climb_divisions"] == 8 and rows[smurf].is_flagged
    assert not rows[normal].signals["rank_climb"]["fired"] and not rows[normal].signals["level_vs_tier"]["fired"]
    assert rows[normal].signals["rank_climb"]["value"] == 0  # one snapshot: no climb yet

    configure(url, "SMURF_ANALYZER", collect_ranks=False)
    with session_scope(url) as session:
        session.execute(update(SmurfAnalysis).values(analyzed_at=utcnow() - timedelta(days=1)))
    again = await smurf_analyzer()  # re-analysed from stored snapshots, no API call
    assert again.metrics.items_processed == 2 and again.metrics.custom["api_requests_made"] == 0


async def test_ban_checker_follows_a_region_transfer_and_isolates_one_players_error(riot_env, riot_sandbox):
    """Issue 22 item 3: a summoner gone from its known platform but present on another platform
    of its region transferred (not LIKELY_BANNED), and riot_players.platform follows; one
    player's 5xx is that player's item error, the others are checked; a 403 stops the run with
    every call it made recorded."""
    url = riot_env
    moved, broken, fine = puuid_of("Moved#NA1"), puuid_of("Broken#NA1"), puuid_of("Fine#NA1")
    flag(url, {moved: "na1", broken: "na1", fine: "na1"})
    riot_sandbox.update_knobs(home_platforms={moved: "br1"}, server_error_puuids=[broken])
    checked = await ban_checker()
    assert checked.status == "PARTIAL"
    assert checked.metrics.custom["verdicts"] == {moved: "ACTIVE", fine: "ACTIVE"}
    [error] = history_rows(url)[-1].metrics["errors"]
    assert error["item"] == broken and "500" in error["error"]
    with session_scope(url) as session:
        evidence = session.execute(select(BanCheck).where(BanCheck.puuid == moved)).scalar_one().evidence
        platform = session.execute(select(RiotPlayer.platform).where(RiotPlayer.puuid == moved)).scalar_one()
    assert evidence["platform"] == "br1" and evidence["searched"][:2] == ["na1", "br1"]
    assert "transferred to br1" in evidence["reason"] and platform == "br1"
    assert f"/br1/lol/league/v4/entries/by-puuid/{moved}" in riot_sandbox.requests

    gone = puuid_of("Gone#NA1")  # account present, summoner on no platform of the region
    flag(url, {gone: "na1"})
    riot_sandbox.update_knobs(home_platforms={gone: "euw1"}, server_error_puuids=[])
    verdict = (await ban_checker()).metrics.custom["verdicts"][gone]
    with session_scope(url) as session:
        evidence = session.execute(select(BanCheck).where(BanCheck.puuid == gone)).scalar_one().evidence
    assert verdict == "LIKELY_BANNED" and evidence["searched"] == ["na1", "br1", "la1", "la2"]

    flag(url, {puuid_of("Kim#NA1"): "na1", puuid_of("Lee#NA1"): "na1"})
    riot_sandbox.reset()
    reset_pacers()
    riot_sandbox.update_knobs(revoke_key_after=4)  # Kim's three lookups, Lee's first, then 403
    with pytest.raises(JobRunFailed):
        await ban_checker()
    row = history_rows(url)[-1]
    assert row.status == "FAILED" and row.api_calls_made == 5 and "403" in (row.error_summary or "")
