"""Riot rows: players to fetch, idempotent match storage, analysis and ban-check records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, or_, select, true, update
from sqlalchemy.orm import Session

from core.db.types import utcnow
from core.db.upsert import UpsertResult, insert_missing, upsert_rows
from core.riot.models import (
    BanCheck,
    RiotMatch,
    RiotMatchParticipant,
    RiotPlayer,
    RiotRankSnapshot,
    SmurfAnalysis,
)

BOT_PUUID = "BOT"  # every co-op-vs-AI bot in match-v5


@dataclass(frozen=True)
class PlayerToFetch:
    puuid: str
    platform: str
    next_match_offset: int
    matches_fetched: int


@dataclass(frozen=True)
class PlayerRef:
    """A player and the platform their summoner and league data live on."""

    puuid: str
    platform: str


def players_to_fetch(session: Session, *, tracked: bool, limit: int,
                     platform: str | None = None) -> list[PlayerToFetch]:
    """Tracked players, or discovered players not yet exhausted, on ``platform`` (None: any);
    least recently fetched first; none whose deferral (``fetch_not_before``) has not run out."""
    stmt = select(RiotPlayer).where(RiotPlayer.is_tracked.is_(tracked), _due(RiotPlayer.fetch_not_before))
    if platform is not None:
        stmt = stmt.where(RiotPlayer.platform == platform)
    if not tracked:
        stmt = stmt.where(RiotPlayer.is_exhausted.is_(False))
    stmt = stmt.order_by(RiotPlayer.last_match_fetch_at.is_not(None), RiotPlayer.last_match_fetch_at,
                         RiotPlayer.discovered_at).limit(limit)
    return [PlayerToFetch(p.puuid, p.platform, p.next_match_offset, p.matches_fetched)
            for p in session.execute(stmt).scalars()]


def track_player(session: Session, *, puuid: str, platform: str, game_name: str, tag_line: str) -> bool:
    """Insert the player as tracked, or mark the known player tracked (name, tag and platform
    refreshed, fetch progress kept); True when the row is new."""
    now = utcnow()
    result = upsert_rows(session, RiotPlayer.__table__, [{
        "puuid": puuid, "platform": platform, "game_name": game_name, "tag_line": tag_line, "is_tracked": True,
        "matches_fetched": 0, "next_match_offset": 0, "is_exhausted": False, "discovered_at": now,
        "updated_at": now}], conflict_columns=["puuid"],
        update_columns=["platform", "game_name", "tag_line", "is_tracked", "updated_at"])
    return result.created == 1


def known_match_ids(session: Session, match_ids: list[str]) -> set[str]:
    if not match_ids:
        return set()
    return set(session.execute(select(RiotMatch.match_id).where(RiotMatch.match_id.in_(match_ids))).scalars())


def store_match(session: Session, body: dict[str, Any], platform: str) -> UpsertResult:
    """Upsert the match by id and its participants by (match id, puuid); new participants
    become discovered players. Returns the participants' created/updated counts (+ the match)."""
    now = utcnow()
    info, match_id = body["info"], body["metadata"]["matchId"]
    match = upsert_rows(session, RiotMatch.__table__, [{
        "match_id": match_id, "platform": platform, "queue_id": info.get("queueId"),
        "game_creation": info.get("gameCreation"), "game_duration": info.get("gameDuration"), "fetched_at": now,
    }], conflict_columns=["match_id"])
    # Co-op-vs-AI bots all have the puuid "BOT": no player, and not one row per match.
    humans = [p for p in info.get("participants", []) if p.get("puuid") and p["puuid"] != BOT_PUUID]
    rows = [{
        "match_id": match_id, "puuid": p["puuid"], "team_id": p.get("teamId"),
        "champion_name": p.get("championName"), "summoner_level": p.get("summonerLevel"),
        "kills": p.get("kills"), "deaths": p.get("deaths"), "assists": p.get("assists"),
        "cs": (p.get("totalMinionsKilled") or 0) + (p.get("neutralMinionsKilled") or 0),
        "time_played": p.get("timePlayed") or info.get("gameDuration"), "win": p.get("win"),
    } for p in humans]
    result = upsert_rows(session, RiotMatchParticipant.__table__, rows, conflict_columns=["match_id", "puuid"])
    insert_missing(session, RiotPlayer.__table__, [
        {"puuid": r["puuid"], "platform": platform, "game_name": p.get("riotIdGameName"),
         "tag_line": p.get("riotIdTagline"), "is_tracked": False, "matches_fetched": 0, "next_match_offset": 0,
         "is_exhausted": False, "discovered_at": now, "updated_at": now}
        for r, p in zip(rows, humans, strict=True)], conflict_columns=["puuid"])
    return UpsertResult(created=result.created + match.created, updated=result.updated + match.updated)


def _due(not_before: Any) -> Any:
    return or_(not_before.is_(None), not_before <= utcnow())


def defer_player(session: Session, puuid: str, column: str, until: datetime) -> None:
    """Riot said later about the player: ``column`` (``fetch_not_before`` for its matches,
    ``check_not_before`` for its ban check) is ``until``; the job leaves it alone until then."""
    session.execute(update(RiotPlayer).where(RiotPlayer.puuid == puuid)
                    .values({column: until, "updated_at": utcnow()}).execution_options(synchronize_session=False))


def advance_player(session: Session, puuid: str, *, stored: int, next_offset: int | None,
                   exhausted: bool | None) -> None:
    """The player's fetch progressed (and any deferral of it is over)."""
    values: dict[str, Any] = {"matches_fetched": RiotPlayer.matches_fetched + stored, "fetch_not_before": None,
                              "last_match_fetch_at": utcnow(), "updated_at": utcnow()}
    if next_offset is not None:
        values["next_match_offset"] = next_offset
    if exhausted is not None:
        values["is_exhausted"] = exhausted
    session.execute(update(RiotPlayer).where(RiotPlayer.puuid == puuid).values(**values)
                    .execution_options(synchronize_session=False))


def due_for_analysis(session: Session, *, min_matches: int, limit: int,
                     queues: Sequence[int] | None = None) -> list[PlayerRef]:
    """Players with enough matches (of ``queues``, when given) and no analysis newer than their
    data, with their platform (empty when no riot_players row says it)."""
    counts = (select(RiotMatchParticipant.puuid, func.count().label("n"),
                     func.max(RiotMatch.fetched_at).label("latest"))
              .join(RiotMatch, RiotMatch.match_id == RiotMatchParticipant.match_id)
              .where(RiotMatch.queue_id.in_(list(queues)) if queues else true())
              .group_by(RiotMatchParticipant.puuid).having(func.count() >= min_matches).subquery())
    due = (select(counts.c.puuid, RiotPlayer.platform)
           .outerjoin(SmurfAnalysis, SmurfAnalysis.puuid == counts.c.puuid)
           .outerjoin(RiotPlayer, RiotPlayer.puuid == counts.c.puuid)
           .where(or_(SmurfAnalysis.puuid.is_(None), SmurfAnalysis.analyzed_at < counts.c.latest))
           .order_by(counts.c.puuid).limit(limit))
    return [PlayerRef(puuid, platform or "") for puuid, platform in session.execute(due).all()]


def matches_frame(session: Session, puuids: list[str]) -> pd.DataFrame:
    """Participant rows of these players with each game's queue, oldest match first."""
    if not puuids:
        return pd.DataFrame()
    rows = session.execute(
        select(RiotMatchParticipant.puuid, RiotMatch.queue_id, RiotMatchParticipant.kills, RiotMatchParticipant.deaths,
               RiotMatchParticipant.assists, RiotMatchParticipant.cs, RiotMatchParticipant.time_played,
               RiotMatchParticipant.win, RiotMatchParticipant.summoner_level)
        .join(RiotMatch, RiotMatch.match_id == RiotMatchParticipant.match_id)
        .where(RiotMatchParticipant.puuid.in_(puuids)).order_by(RiotMatch.game_creation)).all()
    return pd.DataFrame([r._asdict() for r in rows])


def save_rank_snapshots(session: Session, puuid: str, entries: list[dict[str, Any]], captured_at: datetime) -> int:
    """One snapshot per league-v4 entry (queue); returns rows written."""
    return upsert_rows(session, RiotRankSnapshot.__table__, [{
        "puuid": puuid, "queue": e["queueType"], "tier": e["tier"], "rank": e.get("rank") or "I",
        "league_points": e.get("leaguePoints") or 0, "wins": e.get("wins") or 0, "losses": e.get("losses") or 0,
        "captured_at": captured_at} for e in entries if e.get("queueType") and e.get("tier")],
        conflict_columns=["puuid", "queue", "captured_at"]).written


def ranks_frame(session: Session, puuids: list[str]) -> pd.DataFrame:
    """Every rank snapshot of these players, oldest first."""
    if not puuids:
        return pd.DataFrame()
    rows = session.execute(
        select(RiotRankSnapshot.puuid, RiotRankSnapshot.queue, RiotRankSnapshot.tier, RiotRankSnapshot.rank,
               RiotRankSnapshot.captured_at)
        .where(RiotRankSnapshot.puuid.in_(puuids)).order_by(RiotRankSnapshot.captured_at)).all()
    frame = pd.DataFrame([r._asdict() for r in rows])
    if not frame.empty:
        frame["captured_at"] = pd.to_datetime(frame["captured_at"], utc=True)
    return frame


def save_analyses(session: Session, rows: list[dict[str, Any]]) -> UpsertResult:
    return upsert_rows(session, SmurfAnalysis.__table__, rows, conflict_columns=["puuid"])


def flagged_due_for_ban_check(session: Session, *, checked_before: datetime, limit: int,
                              platform: str | None = None) -> list[PlayerRef]:
    """Flagged players (on ``platform``, None: any) not checked since ``checked_before``,
    each with their own platform; none whose deferral (``check_not_before``) has not run out."""
    last = (select(BanCheck.puuid, func.max(BanCheck.checked_at).label("last")).group_by(BanCheck.puuid).subquery())
    stmt = (select(SmurfAnalysis.puuid, RiotPlayer.platform)
            .join(RiotPlayer, RiotPlayer.puuid == SmurfAnalysis.puuid)
            .outerjoin(last, last.c.puuid == SmurfAnalysis.puuid)
            .where(SmurfAnalysis.is_flagged.is_(True), or_(last.c.last.is_(None), last.c.last < checked_before),
                   _due(RiotPlayer.check_not_before))
            .order_by(last.c.last.is_not(None), last.c.last, SmurfAnalysis.puuid).limit(limit))
    if platform is not None:
        stmt = stmt.where(RiotPlayer.platform == platform)  # Select is generative: still before LIMIT
    return [PlayerRef(puuid, platform) for puuid, platform in session.execute(stmt).all()]


def set_platform(session: Session, puuid: str, platform: str) -> None:
    """The player's current platform (after a region transfer)."""
    session.execute(update(RiotPlayer).where(RiotPlayer.puuid == puuid)
                    .values(platform=platform, updated_at=utcnow()).execution_options(synchronize_session=False))


def record_ban_check(session: Session, puuid: str, verdict: str, evidence: dict[str, Any]) -> None:
    """The check and its evidence; any deferral of the player's check is over."""
    session.add(BanCheck(puuid=puuid, verdict=verdict, evidence=evidence, checked_at=utcnow()))
    session.execute(update(RiotPlayer).where(RiotPlayer.puuid == puuid, RiotPlayer.check_not_before.is_not(None))
                    .values(check_not_before=None).execution_options(synchronize_session=False))
