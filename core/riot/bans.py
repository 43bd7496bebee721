"""Ban verdicts from API answers (no official signal exists; see API_SHAPES.md section B)."""

from __future__ import annotations

from typing import Any

ACTIVE, LIKELY_BANNED, UNKNOWN = "ACTIVE", "LIKELY_BANNED", "UNKNOWN"


def ban_verdict(account: dict[str, Any] | None, summoner: dict[str, Any] | None,
                league: list[dict[str, Any]] | None, *, searched: list[str] | None = None,
                moved_to: str | None = None) -> tuple[str, str]:
    """(verdict, reason). None means the API answered 404 for that lookup.

    ``summoner``/``league`` are those of the platform the summoner was found on: the known one,
    or ``moved_to`` when the account transferred (an account resolves on every platform, a
    summoner only on its current one). ``searched``: the platforms asked, known one first.

    - account gone (404): the Riot account no longer exists -> LIKELY_BANNED;
    - account present, no summoner on any platform searched -> LIKELY_BANNED (a region
      transfer would have shown the summoner on its new platform);
    - summoner present and ranked entries present -> ACTIVE;
    - summoner present, no ranked entries: also normal at season start -> UNKNOWN.
    """
    if account is None:
        return LIKELY_BANNED, "account-v1 answers 404 for the puuid"
    if summoner is None:
        where = ", ".join(searched or []) or "its platform"
        return LIKELY_BANNED, f"account exists but summoner-v4 answers 404 on {where}"
    moved = f" (transferred to {moved_to})" if moved_to else ""
    if league:
        return ACTIVE, f"summoner and ranked entries present{moved}"
    return UNKNOWN, f"summoner present but no ranked entries (happens at season start too){moved}"
