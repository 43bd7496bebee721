"""Real match-v5 payloads (tests/real_payloads/riot) through the repository and the smurf
analysis: only ranked games are evidence, bots are no players (issue 22 item 2)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core.db import session_scope
from core.riot import repo
from core.riot.analysis import Thresholds, explain, player_signals
from core.riot.models import RiotMatchParticipant, RiotPlayer
from tests.conftest import _truncate

REAL = Path(__file__).resolve().parents[1] / "real_payloads" / "riot"


def _match(name: str) -> dict[str, Any]:
    return dict(json.loads((REAL / f"{name}.json").read_text()))


def test_arena_and_aram_games_are_left_out_of_the_signals_and_the_explanation_says_so(pg_url: str) -> None:
    _truncate(pg_url)
    ranked = _match("match_ranked_solo_EUW1_7739215514")
    arena = _match("match_arena_KR_8322458588")  # 18 players, 9 of them "win" (top half)
    aram = _match("match_aram_clash_NA1_4856024721")
    assert ranked["info"]["queueId"] == 420 and arena["info"]["queueId"] == 1750 and aram["info"]["queueId"] == 720
    player = ranked["info"]["participants"][0]["puuid"]
    # The same player also played the Arena and the ARAM game (a winner's seat in the Arena).
    arena_winner = next(p for p in arena["info"]["participants"] if p["win"])
    arena_winner["puuid"] = player
    aram["info"]["participants"][0]["puuid"] = player
    arena_only = next(p["puuid"] for p in arena["info"]["participants"] if p["win"] and p["puuid"] != player)
    with session_scope(pg_url) as session:
        for body in (ranked, arena, aram):
            repo.store_match(session, body, "euw1")
        frame = repo.matches_frame(session, [player, arena_only])
        due = repo.due_for_analysis(session, min_matches=1, limit=50, queues=Thresholds().queues)
    assert sorted(frame[frame.puuid == player].queue_id) == [420, 720, 1750]

    scored = player_signals(frame, Thresholds()).set_index("puuid")
    assert int(scored.loc[player, "games"]) == 1 and int(scored.loc[player, "excluded_games"]) == 2
    assert scored.loc[player, "win_rate"] == float(ranked["info"]["participants"][0]["win"])
    assert arena_only not in scored.index  # Arena games alone are no evidence: no verdict
    assert arena_only not in {p.puuid for p in due}  # and it is never due for analysis
    evidence = explain(scored.reset_index().iloc[list(scored.index).index(player)], Thresholds())
    assert evidence["thresholds"]["queues"] == [420, 440]  # the evidence names the games it read


def test_co_op_bots_are_never_discovered_as_players(pg_url: str) -> None:
    _truncate(pg_url)
    coop = copy.deepcopy(_match("match_ranked_solo_KR_5520678133"))
    coop["metadata"]["matchId"] = "KR_1"
    coop["info"]["queueId"] = 870  # co-op vs AI: the other team is five bots, each puuid "BOT"
    for p in coop["info"]["participants"][5:]:
        p["puuid"] = "BOT"
    with session_scope(pg_url) as session:
        repo.store_match(session, coop, "kr")
    with session_scope(pg_url) as session:
        players = set(session.execute(select(RiotPlayer.puuid)).scalars())
        rows = session.execute(select(func.count()).select_from(RiotMatchParticipant)).scalar_one()
    assert "BOT" not in players and len(players) == 5 and rows == 5
