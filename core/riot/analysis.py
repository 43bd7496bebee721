"""Smurf signals from a player's stored matches and rank snapshots (pure pandas; thresholds
from public trackers, overridable per job in ``config_json``).

Input: one row per (match, player) with kills, deaths, assists, cs, time_played (s), win,
summoner_level; optionally one row per rank snapshot (puuid, queue, tier, rank,
captured_at). Output per player: each signal's value, whether it fired, the weighted score
and the thresholds used, so a user can see why a player was flagged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

TIERS = ["IRON", "BRONZE", "SILVER", "GOLD", "PLATINUM", "EMERALD", "DIAMOND", "MASTER", "GRANDMASTER", "CHALLENGER"]
DIVISIONS = {"IV": 0, "III": 1, "II": 2, "I": 3}
_APEX = {"MASTER", "GRANDMASTER", "CHALLENGER"}  # one division each


class Thresholds(BaseModel):
    """When each signal fires (``SMURF_ANALYZER`` ``config_json.thresholds``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    win_rate: float = Field(0.65, ge=0, le=1, description="wins / games")
    kda: float = Field(3.5, ge=0, description="(kills + assists) / max(deaths, 1), over all games")
    cs_per_minute: float = Field(8.0, ge=0, description="(minions + monsters) per minute played")
    low_level: int = Field(60, ge=1, description="account level below this while winning is suspicious")
    low_level_win_rate: float = Field(0.6, ge=0, le=1)
    rank_climb_divisions: int = Field(4, ge=1, description="divisions gained (4 = one tier) within the window")
    rank_climb_window_days: float = Field(14, gt=0, description="snapshots older than this are ignored")
    level_tier_max_level: int = Field(60, ge=1, description="account level below this ...")
    level_tier_min_tier: str = Field("EMERALD", description="... at this tier or higher is suspicious")
    rank_queue: str = Field("RANKED_SOLO_5x5", description="the league queue the rank signals read")
    # Arena places 8-16 players and calls the top half winners, ARAM has no lane farm,
    # Swiftplay and co-op are no ranked evidence: only these queues' games count.
    queues: tuple[int, ...] = Field((420, 440), min_length=1,
                                    description="match-v5 queue ids whose games the match signals read "
                                                "(420 ranked solo/duo, 440 ranked flex)")
    flag_score: float = Field(0.5, ge=0, description="flagged when the weighted score reaches this")

    @field_validator("level_tier_min_tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        if value.upper() not in TIERS:
            raise ValueError(f"unknown tier {value!r}; known: {', '.join(TIERS)}")
        return value.upper()


class Weights(BaseModel):
    """What each fired signal adds to the score (``config_json.weights``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    win_rate: float = Field(0.35, ge=0)
    kda: float = Field(0.3, ge=0)
    cs_per_minute: float = Field(0.2, ge=0)
    low_level: float = Field(0.15, ge=0)
    rank_climb: float = Field(0.25, ge=0)
    level_vs_tier: float = Field(0.2, ge=0)


def division_index(tier: str | None, rank: str | None) -> int | None:
    """Divisions above Iron IV (Gold II = 14); the apex tiers have one division each."""
    if not tier or tier.upper() not in TIERS:
        return None
    base = TIERS.index(tier.upper()) * 4
    return base if tier.upper() in _APEX else base + DIVISIONS.get((rank or "").upper(), 0)


def _label(tier: Any, rank: Any) -> str | None:
    if not isinstance(tier, str):
        return None
    return tier if tier in _APEX else f"{tier} {rank}"


def rank_signals(ranks: pd.DataFrame, thresholds: Thresholds, now: datetime) -> pd.DataFrame:
    """Per puuid from rank snapshots of ``thresholds.rank_queue``: the latest rank, and the
    net divisions climbed over the window: the latest snapshot against the earliest one inside
    the window (a dip and a recovery, Gold I -> Silver I -> Gold I, is no climb)."""
    columns = ["current_tier", "current_rank", "current_index", "climb", "climb_from", "climb_snapshots"]
    if ranks is None or ranks.empty:
        return pd.DataFrame(columns=columns).rename_axis("puuid")
    r = ranks[ranks["queue"] == thresholds.rank_queue].copy()
    r["index"] = [division_index(t, d) for t, d in zip(r["tier"], r["rank"], strict=True)]
    r = r.dropna(subset=["index"]).sort_values("captured_at")
    if r.empty:
        return pd.DataFrame(columns=columns).rename_axis("puuid")
    latest = r.groupby("puuid").last()
    recent = r[r["captured_at"] >= now - timedelta(days=thresholds.rank_climb_window_days)]
    earliest = recent.groupby("puuid").first()
    out = pd.DataFrame({"current_tier": latest["tier"], "current_rank": latest["rank"],
                        "current_index": latest["index"]})
    in_window = latest["captured_at"] >= now - timedelta(days=thresholds.rank_climb_window_days)
    out["climb"] = (latest["index"] - earliest["index"]).where(in_window)
    out["climb_from"] = [_label(t, d) for t, d in zip(earliest["tier"].reindex(out.index),
                                                      earliest["rank"].reindex(out.index), strict=True)]
    out["climb_snapshots"] = recent.groupby("puuid").size().reindex(out.index).fillna(0).astype(int)
    return out


def player_signals(matches: pd.DataFrame, thresholds: Thresholds | None = None, weights: Weights | None = None,
                   ranks: pd.DataFrame | None = None, now: datetime | None = None) -> pd.DataFrame:
    """One row per puuid: games, the six signal values and flags, score, is_flagged.

    Only games of ``thresholds.queues`` count (a ``queue_id`` column says each game's queue);
    ``excluded_games`` says how many others the player has. A player with none counted gets
    no row.

    ``ranks`` (optional) are rank snapshots; without one a player's rank signals do not fire.
    """
    thresholds, weights = thresholds or Thresholds(), weights or Weights()
    excluded = pd.Series(dtype=int)
    if not matches.empty and "queue_id" in matches:
        counted = matches["queue_id"].isin(thresholds.queues)
        excluded = matches[~counted].groupby("puuid").size()
        matches = matches[counted]
    if matches.empty:
        return pd.DataFrame(columns=["puuid", "games", "excluded_games", "score", "is_flagged"])
    g = matches.groupby("puuid")
    out = pd.DataFrame({
        "games": g.size(),
        "win_rate": g["win"].mean(),
        "kda": (g["kills"].sum() + g["assists"].sum()) / g["deaths"].sum().clip(lower=1),
        "cs_per_minute": g["cs"].sum() / (g["time_played"].sum() / 60).clip(lower=1 / 60),
        "summoner_level": g["summoner_level"].last(),
    })
    out["excluded_games"] = excluded.reindex(out.index).fillna(0).astype(int)
    out["win_rate_fired"] = out["win_rate"] >= thresholds.win_rate
    out["kda_fired"] = out["kda"] >= thresholds.kda
    out["cs_per_minute_fired"] = out["cs_per_minute"] >= thresholds.cs_per_minute
    out["low_level_fired"] = (out["summoner_level"] < thresholds.low_level) & (
        out["win_rate"] >= thresholds.low_level_win_rate)
    ranked = rank_signals(ranks if ranks is not None else pd.DataFrame(), thresholds,
                          now or datetime.now(UTC))
    out = out.join(ranked, how="left")
    # NaN (no snapshot) compares False: without a rank the rank signals do not fire.
    out["rank_climb_fired"] = out["climb"].astype(float) >= thresholds.rank_climb_divisions
    min_index = TIERS.index(thresholds.level_tier_min_tier) * 4
    out["level_vs_tier_fired"] = ((out["current_index"].astype(float) >= min_index)
                                  & (out["summoner_level"] < thresholds.level_tier_max_level))
    out["score"] = sum(out[f"{name}_fired"].astype(float) * weight for name, weight in weights.model_dump().items())
    out["is_flagged"] = out["score"] >= thresholds.flag_score
    return out.rename_axis("puuid").reset_index()


def _num(value: Any, digits: int = 3) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), digits)


def explain(row: pd.Series, thresholds: Thresholds | None = None, weights: Weights | None = None) -> dict[str, Any]:
    """The stored evidence for one player: values, which fired, weights and the thresholds
    (``queues`` among them: the games the match signals read; ``excluded_games`` of the row
    counts the others)."""
    thresholds, weights = thresholds or Thresholds(), weights or Weights()
    w = weights.model_dump()
    signals: dict[str, Any] = {
        name: {"value": _num(row[name]), "fired": bool(row[f"{name}_fired"]), "weight": w[name]}
        for name in ("win_rate", "kda", "cs_per_minute")}
    level = int(row["summoner_level"]) if not pd.isna(row["summoner_level"]) else None
    current = _label(row.get("current_tier"), row.get("current_rank"))
    signals["low_level"] = {"value": level, "fired": bool(row["low_level_fired"]), "weight": w["low_level"]}
    climb = _num(row.get("climb"), 0)
    signals["rank_climb"] = {
        "value": int(climb) if climb is not None else None, "fired": bool(row["rank_climb_fired"]),
        "weight": w["rank_climb"], "from": row.get("climb_from") if climb is not None else None,
        "to": current if climb is not None else None,
        "snapshots": int(row["climb_snapshots"]) if _num(row.get("climb_snapshots")) is not None else 0,
        "window_days": thresholds.rank_climb_window_days}
    signals["level_vs_tier"] = {"value": level, "tier": current, "fired": bool(row["level_vs_tier_fired"]),
                                "weight": w["level_vs_tier"]}
    return {"signals": signals, "thresholds": thresholds.model_dump(mode="json")}
