"""Smurf signals from a player's stored matches (pure pandas; thresholds from public trackers).

Input: one row per (match, player) with kills, deaths, assists, cs, time_played (s), win,
summoner_level. Output per player: each signal's value, whether it fired, the weighted
score and the thresholds used, so a user can see why a player was flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Thresholds:
    win_rate: float = 0.65  # wins / games
    kda: float = 3.5  # (kills + assists) / max(deaths, 1), over all games
    cs_per_minute: float = 8.0  # (minions + monsters) per minute played
    low_level: int = 60  # account level below this while winning is suspicious
    low_level_win_rate: float = 0.6
    flag_score: float = 0.5  # flagged when the weighted score reaches this


WEIGHTS = {"win_rate": 0.35, "kda": 0.3, "cs_per_minute": 0.2, "low_level": 0.15}


def player_signals(matches: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """One row per puuid: games, the four signal values and flags, score, is_flagged."""
    if matches.empty:
        return pd.DataFrame(columns=["puuid", "games", "score", "is_flagged"])
    g = matches.groupby("puuid")
    out = pd.DataFrame({
        "games": g.size(),
        "win_rate": g["win"].mean(),
        "kda": (g["kills"].sum() + g["assists"].sum()) / g["deaths"].sum().clip(lower=1),
        "cs_per_minute": g["cs"].sum() / (g["time_played"].sum() / 60).clip(lower=1 / 60),
        "summoner_level": g["summoner_level"].last(),
    })
    out["win_rate_fired"] = out["win_rate"] >= thresholds.win_rate
    out["kda_fired"] = out["kda"] >= thresholds.kda
    out["cs_per_minute_fired"] = out["cs_per_minute"] >= thresholds.cs_per_minute
    out["low_level_fired"] = (out["summoner_level"] < thresholds.low_level) & (
        out["win_rate"] >= thresholds.low_level_win_rate)
    out["score"] = sum(out[f"{name}_fired"].astype(float) * weight for name, weight in WEIGHTS.items())
    out["is_flagged"] = out["score"] >= thresholds.flag_score
    return out.reset_index()


def explain(row: pd.Series, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """The stored evidence for one player: values, which fired, and the thresholds."""
    return {
        "signals": {name: {"value": round(float(row[name]), 3), "fired": bool(row[f"{name}_fired"]),
                           "weight": weight} for name, weight in
                    (("win_rate", WEIGHTS["win_rate"]), ("kda", WEIGHTS["kda"]),
                     ("cs_per_minute", WEIGHTS["cs_per_minute"]))}
        | {"low_level": {"value": int(row["summoner_level"]), "fired": bool(row["low_level_fired"]),
                         "weight": WEIGHTS["low_level"]}},
        "thresholds": asdict(thresholds),
    }
