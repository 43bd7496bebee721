"""Riot match pipelines (seed 001): tracked players, match fetcher, smurf analyzer, ban checker,
and adding tracked players by Riot ID.

Each job reads and validates its ``job_configurations`` row, runs through ``run_job`` and
records ``api_requests_made``, ``records_created`` and ``records_updated``. A 429 stops the
job gracefully: what was fetched is committed, the run is RATE_LIMITED, the next run
continues where it stopped. A 5xx or no answer about one player is its item error and defers
it (the run is PARTIAL and counts it in ``deferred``): the jobs leave the player alone until
``riot.deferSeconds`` have passed (or Retry-After, at most ``deferMaxSeconds``), then a run
takes it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger

from core.riot.config import (
    CONFIG_MODELS,
    DEFAULT_SCHEDULES,
    BanCheckerConfig,
    MatchFetcherConfig,
    SmurfAnalyzerConfig,
    TrackedPlayerUpdaterConfig,
)
from core.riot.players import parse_platform, parse_riot_id
from core.runs.deferral import counting_deferred
from core.runs.errors import item_error
from core.runs.result import JobMetrics, JobResult
from core.settings import Settings
from flows.spec import DefaultSchedule, JobSpec
from tasks.riot import (
    PlayerReport,
    RankReport,
    analyze_players,
    check_bans,
    collect_ranks,
    due_for_analysis,
    due_for_ban_check,
    fetch_player_matches,
    load_job,
    load_players,
    resolve_riot_id,
    save_tracked_player,
)
from tasks.runs import final_state, run_job


def _tally(m: JobMetrics, reports: list[PlayerReport]) -> None:
    m.items_processed = len(reports)
    m.items_created = sum(r.created for r in reports)
    m.items_updated = sum(r.updated for r in reports)
    calls = sum(r.api_calls for r in reports)  # every attempt, a 429's included
    m.custom = {"api_calls": calls, "api_requests_made": calls,
                "records_created": m.items_created, "records_updated": m.items_updated,
                "matches_stored": sum(r.matches_stored for r in reports),
                "deferred": sum(1 for r in reports if r.deferred_until is not None),
                "errors": [item_error(r.puuid, r.error) for r in reports if r.error]}


async def _fetch_players(m: JobMetrics, tracked: bool, limit: int, *, count: int,
                         target: int | None, platform: str | None, match_type: str | None) -> None:
    reports: list[PlayerReport] = []
    try:
        for player in await load_players(tracked, limit, platform):
            start = player.next_match_offset if target is not None else 0
            report = await fetch_player_matches(player, start=start, count=count, target=target,
                                                match_type=match_type)
            reports.append(report)
            if report.stopped is not None:
                raise report.stopped
    finally:
        _tally(m, reports)


@flow(name="tracked-player-updater")
async def tracked_player_updater() -> JobResult | None:
    """New matches of the manually tracked players (TRACKED_PLAYER_UPDATER)."""
    active, config = await load_job("TRACKED_PLAYER_UPDATER")
    assert isinstance(config, TrackedPlayerUpdaterConfig)
    if not active:
        return None
    return final_state(await run_job("tracked_player_updater", "TRACKED_PLAYER_UPDATER", lambda m: _fetch_players(
        m, True, config.max_tracked_players, count=config.max_new_matches_per_player, target=None,
        platform=config.platform, match_type=config.match_type),
        params=config.model_dump(), outcome=counting_deferred("players")))


@flow(name="match-fetcher")
async def match_fetcher() -> JobResult | None:
    """Match history of discovered players, page by page, until their target (MATCH_FETCHER)."""
    active, config = await load_job("MATCH_FETCHER")
    assert isinstance(config, MatchFetcherConfig)
    if not active:
        return None
    return final_state(await run_job("match_fetcher", "MATCH_FETCHER", lambda m: _fetch_players(
        m, False, config.discovered_players_per_run, count=config.matches_per_player_per_run,
        target=config.target_matches_per_player, platform=config.platform, match_type=config.match_type),
        params=config.model_dump(), outcome=counting_deferred("players")))


@flow(name="smurf-analyzer")
async def smurf_analyzer() -> JobResult | None:
    """Score players with enough stored matches (SMURF_ANALYZER): first a rank snapshot of each
    (one league-v4 call, unless ``collect_ranks`` is false), then pandas over matches and ranks."""
    active, config = await load_job("SMURF_ANALYZER")
    assert isinstance(config, SmurfAnalyzerConfig)
    if not active:
        return None

    async def body(m: JobMetrics) -> None:
        players = await due_for_analysis(config.min_matches_required, config.unanalyzed_players_per_run,
                                         config.thresholds.queues)
        ranks = await collect_ranks(players) if config.collect_ranks and players else RankReport()
        # Analysed even when the rank collection stopped: stored snapshots still count.
        counts = await analyze_players([p.puuid for p in players], config.thresholds, config.weights)
        m.items_processed, m.items_created, m.items_updated = counts["analyzed"], counts["created"], counts["updated"]
        m.custom = {"flagged": counts["flagged"], "api_calls": ranks.api_calls, "api_requests_made": ranks.api_calls,
                    "rank_snapshots": ranks.snapshots, "records_created": counts["created"],
                    "records_updated": counts["updated"], "errors": ranks.errors}
        if ranks.stopped is not None:
            raise ranks.stopped

    return final_state(await run_job("smurf_analyzer", "SMURF_ANALYZER", body, params=config.model_dump()))


@flow(name="ban-checker")
async def ban_checker() -> JobResult | None:
    """Re-check flagged players not checked for ``ban_check_days`` (BAN_CHECKER)."""
    active, config = await load_job("BAN_CHECKER")
    assert isinstance(config, BanCheckerConfig)
    if not active:
        return None

    async def body(m: JobMetrics) -> None:
        players = await due_for_ban_check(config.ban_check_days, config.max_checks_per_run, config.platform)
        result = await check_bans(players)
        verdicts = result["verdicts"]
        m.items_processed = len(verdicts) + len(result["errors"])
        m.items_created = len(verdicts)
        m.custom = {"api_calls": result["api_calls"], "api_requests_made": result["api_calls"],
                    "records_created": len(verdicts),
                    "records_updated": 0, "verdicts": verdicts, "errors": result["errors"],
                    "deferred": len(result["deferred"])}
        if result["stopped"] is not None:  # a 429 (RATE_LIMITED) or 401/403 (FAILED), calls recorded
            raise result["stopped"]

    return final_state(await run_job("ban_checker", "BAN_CHECKER", body, params=config.model_dump(),
                                     outcome=counting_deferred("ban checks")))


@flow(name="add-tracked-player")
async def add_tracked_player(riot_id: str, platform: str) -> dict[str, Any]:
    """Track a player by Riot ID (``"gameName#tagLine"``) on ``platform``: the puuid comes from
    account-v1 on the platform's regional route; the row is inserted or marked tracked.

    Raises ValueError naming ``riot_id`` or ``platform`` for bad input, and
    ``UnknownRiotIdError`` (a NotFoundError and a ValueError) when no such account exists.
    """
    game_name, tag_line = parse_riot_id(riot_id)
    platform = parse_platform(platform)
    account = await resolve_riot_id(game_name, tag_line, platform)
    puuid = account["puuid"]
    # Riot's spelling of the name and tag, not the caller's.
    game_name, tag_line = account.get("gameName") or game_name, account.get("tagLine") or tag_line
    created = await save_tracked_player(puuid, platform, game_name, tag_line)
    get_run_logger().info("tracking %s#%s on %s (%s)", game_name, tag_line, platform, "new" if created else "known")
    return {"puuid": puuid, "game_name": game_name, "tag_line": tag_line, "platform": platform,
            "is_tracked": True, "created": created}


def _riot_schedule(job: str) -> Callable[[Settings], DefaultSchedule]:
    return lambda _settings: DefaultSchedule(DEFAULT_SCHEDULES[job], "UTC")  # the seed's, in UTC


JOBS = (
    JobSpec(tracked_player_updater, "riot", "Tracked player updater",
            "New matches of manually tracked players (seed 001, TRACKED_PLAYER_UPDATER).", tags=("jobpipes", "riot"),
            schedule=_riot_schedule("tracked-player-updater"), concurrency=1, config_table="job_configurations",
            config_key="TRACKED_PLAYER_UPDATER",
            config_model=CONFIG_MODELS["TRACKED_PLAYER_UPDATER"]),
    JobSpec(match_fetcher, "riot", "Match fetcher", "Match history of discovered players (seed 001, MATCH_FETCHER).",
            tags=("jobpipes", "riot"), schedule=_riot_schedule("match-fetcher"), concurrency=1,
            config_table="job_configurations", config_key="MATCH_FETCHER",
            config_model=CONFIG_MODELS["MATCH_FETCHER"]),
    JobSpec(smurf_analyzer, "riot", "Smurf analyzer",
            "Smurf signals from stored ranked matches and a league-v4 rank snapshot of each player, one API call "
            "each (collect_ranks: false makes no API call) (seed 001, SMURF_ANALYZER).", tags=("jobpipes", "riot"),
            schedule=_riot_schedule("smurf-analyzer"), config_table="job_configurations",
            config_key="SMURF_ANALYZER",
            config_model=CONFIG_MODELS["SMURF_ANALYZER"]),
    JobSpec(ban_checker, "riot", "Ban checker",
            "Re-check flagged players and record the evidence (seed 001, BAN_CHECKER).", tags=("jobpipes", "riot"),
            schedule=_riot_schedule("ban-checker"), config_table="job_configurations", config_key="BAN_CHECKER",
            config_model=CONFIG_MODELS["BAN_CHECKER"]),
    JobSpec(add_tracked_player, "riot", "Add a tracked player",
            'Track a Riot player by Riot ID (riot_id "gameName#tagLine", platform e.g. euw1) (seed 001).',
            tags=("jobpipes", "riot")),
)
