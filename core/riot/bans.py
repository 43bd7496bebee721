"""Ban verdicts from API answers (no official signal exists; see API_SHAPES.md section B)."""

from __future__ import annotations

from typing import Any

ACTIVE, LIKELY_BANNED, UNKNOWN = "ACTIVE", "LIKELY_BANNED", "UNKNOWN"


def ban_verdict(account: dict[str, Any] | None, summoner: dict[str, Any] | None,
                league: list[dict[str, Any]] | None) -> tuple[str, str]:
    """(verdict, reason). None means the API answered 404 for that lookup.

    - account gone (404): the Riot account no longer exists -> LIKELY_BANNED;
    - account present but no summoner on the known platform: not a region transfer (the
      account would still resolve there) -> LIKELY_BANNED;
    - summoner present and ranked entries present -> ACTIVE;
    - summoner present, no ranked entries: also normal at season start -> UNKNOWN.
    """
    if account is None:
        return LIKELY_BANNED, "account-v1 answers 404 for the puuid"
    if summoner is None:
        return LIKELY_BANNED, "account exists but summoner-v4 answers 404 on its platform"
    if league:
        return ACTIVE, "summoner and ranked entries present"
    return UNKNOWN, "summoner present but no ranked entries (happens at season start too)"
