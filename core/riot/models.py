"""Tables of the Riot pipelines (seed 001): players, matches, verdicts (their job rows are
``core.db.job_configurations``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import SERVER_NOW, JsonType, UTCDateTime, utcnow


class RiotPlayer(Base):
    """A tracked or discovered player and how far their match history has been fetched."""

    __tablename__ = "riot_players"

    puuid: Mapped[str] = mapped_column(String(78), primary_key=True)
    platform: Mapped[str] = mapped_column(String(8))
    game_name: Mapped[str | None] = mapped_column(String(100))
    tag_line: Mapped[str | None] = mapped_column(String(20))
    is_tracked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    matches_fetched: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_match_offset: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    is_exhausted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_match_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Riot refused work about the player for now (5xx, no answer): its matches, its ban check,
    # are left alone until then.
    fetch_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)


class RiotMatch(Base):
    __tablename__ = "riot_matches"

    match_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(8))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    game_creation: Mapped[int | None] = mapped_column(BigInteger)
    game_duration: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiotMatchParticipant(Base):
    __tablename__ = "riot_match_participants"
    __table_args__ = (UniqueConstraint("match_id", "puuid", name="uq_riot_participants_match_puuid"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    match_id: Mapped[str] = mapped_column(String(40), ForeignKey("riot_matches.match_id", ondelete="CASCADE"))
    puuid: Mapped[str] = mapped_column(String(78))
    team_id: Mapped[int | None] = mapped_column(Integer)
    champion_name: Mapped[str | None] = mapped_column(String(50))
    summoner_level: Mapped[int | None] = mapped_column(Integer)
    kills: Mapped[int | None] = mapped_column(Integer)
    deaths: Mapped[int | None] = mapped_column(Integer)
    assists: Mapped[int | None] = mapped_column(Integer)
    cs: Mapped[int | None] = mapped_column(Integer)
    time_played: Mapped[int | None] = mapped_column(Integer)
    win: Mapped[bool | None] = mapped_column(Boolean)


class SmurfAnalysis(Base):
    """The latest analysis of a player: every signal and the thresholds that produced it."""

    __tablename__ = "smurf_analyses"

    puuid: Mapped[str] = mapped_column(String(78), primary_key=True)
    games: Mapped[int] = mapped_column(Integer)  # games of thresholds.queues: what the signals read
    # stored games of other queues, left out (Arena, ARAM, Swiftplay...)
    excluded_games: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    score: Mapped[float] = mapped_column(Float)
    is_flagged: Mapped[bool] = mapped_column(Boolean)
    signals: Mapped[dict[str, Any]] = mapped_column(JsonType)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JsonType)
    analyzed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiotRankSnapshot(Base):
    """A player's league-v4 entry in one queue at one moment (rank climb, level against tier)."""

    __tablename__ = "riot_rank_snapshots"
    __table_args__ = (UniqueConstraint("puuid", "queue", "captured_at", name="uq_riot_rank_snapshots"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    puuid: Mapped[str] = mapped_column(String(78))
    queue: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(20))
    rank: Mapped[str] = mapped_column(String(4))
    league_points: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    wins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    losses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)


class BanCheck(Base):
    """One ban check of a flagged player, with the API answers it was based on."""

    __tablename__ = "ban_checks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    puuid: Mapped[str] = mapped_column(String(78))
    verdict: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonType)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- brand data collection and scoring (seed 003) ------------------------------------------
