"""Smurf signals on small hand-made DataFrames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from core.errors import ConfigError
from core.riot.analysis import Thresholds, Weights, division_index, explain, player_signals
from core.riot.config import parse_config


def games(puuid: str, n: int, *, wins: int, k: int, d: int, a: int, cs: int, minutes: int, level: int) -> list[dict]:
    return [{"puuid": puuid, "win": i < wins, "kills": k, "deaths": d, "assists": a, "cs": cs,
             "time_played": minutes * 60, "summoner_level": level} for i in range(n)]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        games("smurf", 10, wins=8, k=10, d=2, a=8, cs=270, minutes=30, level=35)
        + games("normal", 10, wins=5, k=5, d=5, a=5, cs=180, minutes=30, level=300)
        + games("stomper", 10, wins=7, k=9, d=3, a=6, cs=150, minutes=30, level=400))


def test_each_signal_and_the_score():
    out = player_signals(frame()).set_index("puuid")
    smurf, normal, stomper = out.loc["smurf"], out.loc["normal"], out.loc["stomper"]
    assert smurf["win_rate"] == pytest.approx(0.8) and smurf["kda"] == pytest.approx(9.0)
    assert smurf["cs_per_minute"] == pytest.approx(9.0)
    assert smurf["score"] == pytest.approx(1.0) and smurf["is_flagged"]
    assert normal["score"] == 0 and not normal["is_flagged"]
    # a good main account: high win rate and KDA, but normal CS and a high level
    assert stomper["win_rate_fired"] and stomper["kda_fired"] and not stomper["cs_per_minute_fired"]
    assert stomper["score"] == pytest.approx(0.65) and stomper["is_flagged"]


def test_thresholds_change_the_verdict_and_are_explained():
    out = player_signals(frame(), Thresholds(flag_score=0.7)).set_index("puuid")
    assert not out.loc["stomper", "is_flagged"]
    evidence = explain(out.loc["smurf"].rename("smurf"))
    assert evidence["signals"]["kda"] == {"value": 9.0, "fired": True, "weight": 0.3}
    assert evidence["signals"]["low_level"]["value"] == 35
    assert evidence["thresholds"]["win_rate"] == 0.65
    # no rank snapshot: the rank signals are explained as unknown and do not fire
    assert evidence["signals"]["rank_climb"] | {"window_days": 0} == {
        "value": None, "fired": False, "weight": 0.25, "from": None, "to": None, "snapshots": 0, "window_days": 0}
    assert evidence["signals"]["level_vs_tier"] == {"value": 35, "tier": None, "fired": False, "weight": 0.2}


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def snaps(puuid: str, *points: tuple[int, str, str]) -> list[dict]:
    """Solo-queue snapshots (days ago, tier, rank) of one player."""
    return [{"puuid": puuid, "queue": "RANKED_SOLO_5x5", "tier": tier, "rank": rank, "league_points": 50,
             "wins": 10, "losses": 5, "captured_at": NOW - timedelta(days=days)} for days, tier, rank in points]


def ranked() -> pd.DataFrame:
    return pd.DataFrame(
        snaps("smurf", (10, "SILVER", "IV"), (6, "GOLD", "II"), (1, "DIAMOND", "IV"))  # +16 divisions
        + snaps("normal", (40, "BRONZE", "I"), (12, "SILVER", "IV"), (2, "SILVER", "III"))  # +1
        + snaps("stomper", (3, "PLATINUM", "I"), (1, "PLATINUM", "I"))
        + [{"puuid": "normal", "queue": "RANKED_FLEX_SR", "tier": "MASTER", "rank": "I", "league_points": 1,
            "wins": 1, "losses": 0, "captured_at": NOW}])  # another queue: ignored


def test_division_index():
    assert [division_index("IRON", "IV"), division_index("GOLD", "II"), division_index("diamond", "i")] == [0, 14, 27]
    assert division_index("MASTER", "I") == division_index("MASTER", "IV") == 28
    assert division_index("CHALLENGER", "I") == 36 and division_index(None, None) is None


def test_rank_climb_within_the_window():
    out = player_signals(frame(), ranks=ranked(), now=NOW).set_index("puuid")
    assert out.loc["smurf", "climb"] == 16 and out.loc["smurf", "rank_climb_fired"]
    assert out.loc["normal", "climb"] == 1 and not out.loc["normal", "rank_climb_fired"]
    assert out.loc["stomper", "climb"] == 0
    evidence = explain(out.loc["smurf"].rename("smurf"))["signals"]["rank_climb"]
    assert evidence == {"value": 16, "fired": True, "weight": 0.25, "from": "SILVER IV", "to": "DIAMOND IV",
                        "snapshots": 3, "window_days": 14}
    # a 7-day window sees only GOLD II -> DIAMOND IV (+10); a 1.5-day window only the latest
    narrow = player_signals(frame(), Thresholds(rank_climb_window_days=7), ranks=ranked(), now=NOW)
    assert narrow.set_index("puuid").loc["smurf", "climb"] == 10
    latest_only = player_signals(frame(), Thresholds(rank_climb_window_days=1.5), ranks=ranked(), now=NOW)
    assert latest_only.set_index("puuid").loc["smurf", "climb"] == 0


def test_a_dip_and_a_recovery_is_no_climb():
    """Issue 22 item 4: Gold I -> Silver I -> Gold I nets zero divisions over the window; the
    lowest snapshot is not the start of a climb."""
    dip = pd.DataFrame(snaps("smurf", (10, "GOLD", "I"), (5, "SILVER", "I"), (1, "GOLD", "I")))
    out = player_signals(frame(), ranks=dip, now=NOW).set_index("puuid")
    assert out.loc["smurf", "climb"] == 0 and not out.loc["smurf", "rank_climb_fired"]
    assert explain(out.loc["smurf"].rename("smurf"))["signals"]["rank_climb"]["from"] == "GOLD I"
    climb = pd.DataFrame(snaps("smurf", (10, "SILVER", "I"), (5, "GOLD", "IV"), (1, "GOLD", "I")))
    assert player_signals(frame(), ranks=climb, now=NOW).set_index("puuid").loc["smurf", "climb"] == 4


def test_a_stale_latest_snapshot_is_no_climb():
    out = player_signals(frame(), ranks=pd.DataFrame(snaps("smurf", (40, "IRON", "IV"), (20, "DIAMOND", "I"))),
                         now=NOW).set_index("puuid")
    assert pd.isna(out.loc["smurf", "climb"]) and not out.loc["smurf", "rank_climb_fired"]
    assert out.loc["smurf", "level_vs_tier_fired"]  # the current tier still counts


def test_account_level_against_tier():
    out = player_signals(frame(), ranks=ranked(), now=NOW).set_index("puuid")
    assert out.loc["smurf", "level_vs_tier_fired"]  # level 35 in Diamond
    assert not out.loc["normal", "level_vs_tier_fired"]  # level 300 in Silver
    assert not out.loc["stomper", "level_vs_tier_fired"]  # level 400 in Platinum
    evidence = explain(out.loc["smurf"].rename("smurf"))["signals"]["level_vs_tier"]
    assert evidence == {"value": 35, "tier": "DIAMOND IV", "fired": True, "weight": 0.2}
    low_bar = player_signals(frame(), Thresholds(level_tier_min_tier="silver", level_tier_max_level=500),
                             ranks=ranked(), now=NOW).set_index("puuid")
    assert low_bar["level_vs_tier_fired"].all()


def test_weights_and_thresholds_come_from_the_job_config():
    config = parse_config("SMURF_ANALYZER", {
        "unanalyzed_players_per_run": 10, "min_matches_required": 5,
        "thresholds": {"kda": 20, "rank_climb_divisions": 20}, "weights": {"win_rate": 0.1, "level_vs_tier": 1}})
    assert config.thresholds.kda == 20 and config.thresholds.win_rate == 0.65  # the rest keep their defaults
    out = player_signals(frame(), config.thresholds, config.weights, ranks=ranked(), now=NOW).set_index("puuid")
    smurf = out.loc["smurf"]
    assert not smurf["kda_fired"] and not smurf["rank_climb_fired"]
    assert smurf["score"] == pytest.approx(0.1 + 0.2 + 0.15 + 1)  # win rate, cs, low level, level vs tier
    defaults = parse_config("SMURF_ANALYZER", {"unanalyzed_players_per_run": 10, "min_matches_required": 5})
    assert defaults.thresholds == Thresholds() and defaults.weights == Weights()


def test_bad_analyzer_config_names_the_field():
    with pytest.raises(ConfigError) as info:
        parse_config("SMURF_ANALYZER", {"unanalyzed_players_per_run": 10, "min_matches_required": 5,
                                        "thresholds": {"kda": "high", "level_tier_min_tier": "WOOD"},
                                        "weights": {"smurfiness": 1}})
    message = str(info.value)
    assert "thresholds.kda: Input should be a valid number" in message
    assert "thresholds.level_tier_min_tier: Value error, unknown tier 'WOOD'" in message
    assert "weights.smurfiness: Extra inputs are not permitted" in message


def test_deathless_games_do_not_divide_by_zero_and_empty_input():
    df = pd.DataFrame(games("perfect", 3, wins=3, k=4, d=0, a=2, cs=100, minutes=20, level=100))
    assert player_signals(df).iloc[0]["kda"] == pytest.approx(18.0)
    assert player_signals(pd.DataFrame()).empty


@pytest.mark.parametrize(
    ("account", "summoner", "league", "verdict"),
    [(None, None, None, "LIKELY_BANNED"),
     ({"puuid": "p"}, None, [], "LIKELY_BANNED"),
     ({"puuid": "p"}, {"summonerLevel": 30}, [{"tier": "GOLD"}], "ACTIVE"),
     ({"puuid": "p"}, {"summonerLevel": 30}, [], "UNKNOWN")],
)
def test_ban_verdicts(account, summoner, league, verdict):
    from core.riot.bans import ban_verdict

    assert ban_verdict(account, summoner, league)[0] == verdict
