"""Riot tasks: one task per player (match list + new matches), analysis, ban checks.

Every database step rides out an outage (``tasks._common.ride_out_db``). A 5xx or no answer
about one player after the client's retries is that player's item error (seed 001: log and
continue) and defers the player (``riot.deferSeconds``, at most ``deferMaxSeconds``): the job
leaves it alone until then, and a later run takes it. A 429 stops the run (RATE_LIMITED, seed
001): Riot's limits are the key's, not the player's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import UpsertResult
from core.errors import NotFoundError, ProviderError, RateLimitedError
from core.riot import repo
from core.riot.analysis import Thresholds, Weights, explain, player_signals
from core.riot.bans import ban_verdict
from core.riot.client import RiotClient, account_region, platforms_of_region
from core.riot.config import load_config
from core.riot.players import UnknownRiotIdError
from core.riot.repo import PlayerRef, PlayerToFetch
from core.runs.deferral import is_later, not_before
from core.runs.errors import ItemError, item_error
from core.settings import get_settings
from tasks._common import db_url, ride_out_db, shared_limits


@dataclass
class PlayerReport:
    puuid: str
    api_calls: int = 0
    matches_stored: int = 0
    created: int = 0
    updated: int = 0
    error: str | None = None
    deferred_until: datetime | None = None  # with ``error``: Riot said later (5xx, no answer)
    # A 429 or a fatal error (401/403): the flow stops the run with it, after counting the calls.
    stopped: ProviderError | None = field(default=None, repr=False)


def _later(exc: ProviderError) -> datetime:
    settings = get_settings().riot
    return not_before(exc, defer_seconds=settings.defer_seconds, defer_max_seconds=settings.defer_max_seconds)


@task(name="fetch-player-matches", task_run_name="{player.puuid:.12}", cache_policy=NO_CACHE)
async def fetch_player_matches(player: PlayerToFetch, *, start: int, count: int,
                               target: int | None = None, match_type: str | None = "ranked") -> PlayerReport:
    """Fetch the player's match ids from ``start`` and every match not stored yet.

    ``match_type``: match-v5's type filter of the ids (``ranked`` by default: no Arena, ARAM
    or co-op games). Each match is committed as it arrives, so a 429 keeps everything fetched before it;
    the player's offset only advances once the whole page is stored, so the next run
    re-lists the page and skips the stored ids: nothing is fetched twice. A 429 or a
    401/403 comes back in ``report.stopped`` with the calls made (the flow stops the run);
    other errors are logged with the puuid and reported, a 5xx or no answer also defers the
    player (``report.deferred_until``).
    """
    report = PlayerReport(player.puuid)
    url = db_url()
    async with RiotClient(get_settings().riot, **shared_limits()) as client:
        try:
            ids = await client.match_ids(player.platform, player.puuid, start=start, count=count, type=match_type)
            known = await ride_out_db(_known_matches, url, ids, what="the stored match ids")
            for match_id in [m for m in ids if m not in known]:
                body = await client.match(player.platform, match_id)
                counts = await ride_out_db(_store_match, url, body, player, what="a match's write")
                report.matches_stored += 1
                report.created += counts.created
                report.updated += counts.updated
            total = player.matches_fetched + report.matches_stored
            await ride_out_db(_advance, url, player.puuid, start + len(ids) if target is not None else None,
                              (len(ids) < count or total >= target) if target is not None else None,
                              what="the player's progress")
        except ProviderError as exc:
            if isinstance(exc, RateLimitedError) or exc.fatal:
                report.stopped = exc
                return report
            report.error = str(exc)
            get_run_logger().warning("player %s: %s", player.puuid, exc)
            if is_later(exc):
                report.deferred_until = _later(exc)
                await ride_out_db(_defer, url, player.puuid, "fetch_not_before", report.deferred_until,
                                  what="the player's deferral")
        finally:
            report.api_calls = client.api_calls
    return report


def _known_matches(url: str, ids: list[str]) -> set[str]:
    with session_scope(url) as session:
        return repo.known_match_ids(session, ids)


def _store_match(url: str, body: dict[str, Any], player: PlayerToFetch) -> UpsertResult:
    with session_scope(url) as session:
        counts = repo.store_match(session, body, player.platform)
        repo.advance_player(session, player.puuid, stored=1, next_offset=None, exhausted=None)
    return counts


def _advance(url: str, puuid: str, next_offset: int | None, exhausted: bool | None) -> None:
    with session_scope(url) as session:
        repo.advance_player(session, puuid, stored=0, next_offset=next_offset, exhausted=exhausted)


def _defer(url: str, puuid: str, column: str, until: datetime) -> None:
    with session_scope(url) as session:
        repo.defer_player(session, puuid, column, until)


@task(name="resolve-riot-id", cache_policy=NO_CACHE)
async def resolve_riot_id(game_name: str, tag_line: str, platform: str) -> dict[str, Any]:
    """account-v1 by Riot ID on the platform's regional route: ``{puuid, gameName, tagLine}``."""
    async with RiotClient(get_settings().riot, **shared_limits()) as client:
        try:
            return await client.account_by_riot_id(platform, game_name, tag_line)
        except NotFoundError as exc:
            raise UnknownRiotIdError(
                f"riot_id: no Riot account {game_name}#{tag_line} (account-v1 answered 404 on "
                f"{account_region(platform)})", status=404, attempts=exc.attempts) from None


@task(cache_policy=NO_CACHE)
async def save_tracked_player(puuid: str, platform: str, game_name: str, tag_line: str) -> bool:
    """Upsert the player with ``is_tracked``; True when the row is new."""
    return await ride_out_db(_track, puuid, platform, game_name, tag_line, what="the tracked player's write")


def _track(puuid: str, platform: str, game_name: str, tag_line: str) -> bool:
    with session_scope(db_url()) as session:
        return repo.track_player(session, puuid=puuid, platform=platform, game_name=game_name, tag_line=tag_line)


@task(cache_policy=NO_CACHE)
async def load_players(tracked: bool, limit: int, platform: str | None = None) -> list[PlayerToFetch]:
    """The players to fetch now (none whose deferral has not run out)."""
    return await ride_out_db(_players, tracked, limit, platform, what="the players to fetch")


def _players(tracked: bool, limit: int, platform: str | None) -> list[PlayerToFetch]:
    with session_scope(db_url()) as session:
        return repo.players_to_fetch(session, tracked=tracked, limit=limit, platform=platform)


@task(cache_policy=NO_CACHE)
async def due_for_analysis(min_matches: int, limit: int, queues: tuple[int, ...] | None = None) -> list[PlayerRef]:
    """Players with at least ``min_matches`` stored and no analysis newer than their data."""
    return await ride_out_db(_due_for_analysis, min_matches, limit, queues, what="the players to analyse")


def _due_for_analysis(min_matches: int, limit: int, queues: tuple[int, ...] | None) -> list[PlayerRef]:
    with session_scope(db_url()) as session:
        return repo.due_for_analysis(session, min_matches=min_matches, limit=limit, queues=queues)


@dataclass
class RankReport:
    api_calls: int = 0
    snapshots: int = 0
    errors: list[ItemError] = field(default_factory=list)
    stopped: ProviderError | None = field(default=None, repr=False)  # a 429 or 401/403


@task(name="collect-ranks", cache_policy=NO_CACHE)
async def collect_ranks(players: list[PlayerRef]) -> RankReport:
    """Snapshot each player's league-v4 entries (platform host), one transaction per player.
    A 429 or 401/403 stops the collection (reported); other errors are per-player."""
    report = RankReport()
    url = db_url()
    async with RiotClient(get_settings().riot, **shared_limits()) as client:
        try:
            for player in players:
                if not player.platform:
                    report.errors.append(item_error(player.puuid, "no platform known (riot_players)"))
                    continue
                try:
                    entries = await client.league_entries(player.platform, player.puuid)
                except ProviderError as exc:
                    if isinstance(exc, RateLimitedError) or exc.fatal:
                        report.stopped = exc
                        break
                    report.errors.append(item_error(player.puuid, f"league-v4: {exc}"))
                    continue
                report.snapshots += await ride_out_db(_save_ranks, url, player.puuid, entries,
                                                      what="a rank snapshot's write")
        finally:
            report.api_calls = client.api_calls
    return report


def _save_ranks(url: str, puuid: str, entries: list[dict[str, Any]]) -> int:
    with session_scope(url) as session:
        return repo.save_rank_snapshots(session, puuid, entries, utcnow())


@task(cache_policy=NO_CACHE)
async def analyze_players(puuids: list[str], thresholds: Thresholds, weights: Weights) -> dict[str, int]:
    """Score these players from their stored matches and rank snapshots; store each signal's
    evidence, the thresholds and the verdict."""
    return await ride_out_db(_analyze, puuids, thresholds, weights, what="the analysis")


def _analyze(puuids: list[str], thresholds: Thresholds, weights: Weights) -> dict[str, int]:
    with session_scope(db_url()) as session:
        now = utcnow()
        scored = player_signals(repo.matches_frame(session, puuids), thresholds, weights,
                                ranks=repo.ranks_frame(session, puuids), now=now)
        rows = [{"puuid": r["puuid"], "games": int(r["games"]), "excluded_games": int(r["excluded_games"]),
                 "score": float(r["score"]),
                 "is_flagged": bool(r["is_flagged"]), **explain(r, thresholds, weights), "analyzed_at": now}
                for _, r in scored.iterrows()]
        result = repo.save_analyses(session, rows)
    return {"analyzed": len(rows), "flagged": sum(r["is_flagged"] for r in rows),
            "created": result.created, "updated": result.updated}


async def _or_none(call: Any) -> Any:
    try:
        return await call
    except NotFoundError:
        return None


@task(name="check-bans", cache_policy=NO_CACHE)
async def check_bans(players: list[PlayerRef]) -> dict[str, Any]:
    """Look each flagged player up again (account-v1 on its regional host, summoner-v4 and
    league-v4 on the platform host) and record the verdict with the answers behind it.

    A summoner missing on the known platform is looked for on the other platforms of its
    region before a LIKELY_BANNED verdict: found there, it transferred, and its
    ``riot_players.platform`` follows. One player's 5xx or network error is that player's
    item error (seed 001: log and continue); a 5xx or no answer also defers the player
    (``deferred``: its check is left for a run past its not-before time); a 429 or a 401/403
    stops the checks and comes back in ``stopped`` with the calls made."""
    verdicts: dict[str, str] = {}
    errors: list[ItemError] = []
    deferred: list[str] = []
    stopped: ProviderError | None = None
    logger = get_run_logger()
    url = db_url()
    async with RiotClient(get_settings().riot, **shared_limits()) as client:
        for player in players:
            puuid, platform = player.puuid, player.platform
            try:
                account = await _or_none(client.account_by_puuid(platform, puuid))
                found_on, summoner, searched = platform, None, [platform]
                if account is not None:
                    summoner = await _or_none(client.summoner(platform, puuid))
                    for other in platforms_of_region(platform)[1:] if summoner is None else []:
                        searched.append(other)
                        summoner = await _or_none(client.summoner(other, puuid))
                        if summoner is not None:
                            found_on = other
                            break
                league = await _or_none(client.league_entries(found_on, puuid)) if summoner is not None else None
            except ProviderError as exc:
                if isinstance(exc, RateLimitedError) or exc.fatal:
                    stopped = exc
                    break
                logger.warning("ban check of %s on %s failed: %s", puuid, platform, exc)
                errors.append(item_error(puuid, exc))
                if is_later(exc):
                    deferred.append(puuid)
                    await ride_out_db(_defer, url, puuid, "check_not_before", _later(exc),
                                      what="the player's deferral")
                continue
            moved_to = found_on if found_on != platform else None
            verdict, reason = ban_verdict(account, summoner, league, searched=searched, moved_to=moved_to)
            await ride_out_db(_record_check, url, puuid, verdict, {
                "reason": reason, "platform": found_on, "searched": searched, "account": account,
                "summoner": summoner, "league_entries": league}, moved_to, what="a ban check's write")
            verdicts[puuid] = verdict
        return {"verdicts": verdicts, "errors": errors, "deferred": deferred, "api_calls": client.api_calls,
                "stopped": stopped}


def _record_check(url: str, puuid: str, verdict: str, evidence: dict[str, Any], moved_to: str | None) -> None:
    league = evidence.get("league_entries") or []
    with session_scope(url) as session:
        repo.record_ban_check(session, puuid, verdict, evidence)
        repo.save_rank_snapshots(session, puuid, league, utcnow())  # free rank history
        if moved_to:
            repo.set_platform(session, puuid, moved_to)


@task(cache_policy=NO_CACHE)
async def load_job(job_type: str) -> tuple[bool, object]:
    """The job's ``is_active`` flag and its validated ``config_json``."""
    return await ride_out_db(_load_job, job_type, what=f"the {job_type} configuration")


def _load_job(job_type: str) -> tuple[bool, object]:
    with session_scope(db_url()) as session:
        row, config = load_config(session, job_type)
        return row.is_active, config


@task(cache_policy=NO_CACHE)
async def due_for_ban_check(days: int, limit: int, platform: str | None = None) -> list[PlayerRef]:
    """Flagged players (on ``platform``, None: any) whose last ban check is older than
    ``days`` (at most ``limit``), leaving out those whose deferral has not run out."""
    return await ride_out_db(_due_for_ban_check, days, limit, platform, what="the players to check")


def _due_for_ban_check(days: int, limit: int, platform: str | None) -> list[PlayerRef]:
    with session_scope(db_url()) as session:
        return repo.flagged_due_for_ban_check(session, checked_before=utcnow() - timedelta(days=days),
                                              limit=limit, platform=platform)
