"""Smurf signals on small hand-made DataFrames."""

from __future__ import annotations

import pandas as pd
import pytest

from core.riot.analysis import Thresholds, explain, player_signals


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
    evidence = explain(out.loc["smurf"])
    assert evidence["signals"]["kda"] == {"value": 9.0, "fired": True, "weight": 0.3}
    assert evidence["signals"]["low_level"]["value"] == 35
    assert evidence["thresholds"]["win_rate"] == 0.65


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
