"""Tracked players by Riot ID: parsing ``gameName#tagLine`` and the platform, with errors
that name the bad field (the flow's and the jobs API's input)."""

from __future__ import annotations

from core.errors import NotFoundError
from core.riot.client import PLATFORM_REGION

# Riot's rules: a game name of 3-16 characters, a tag line of 3-5 letters or digits.
_NAME_LENGTH, _TAG_LENGTH = (3, 16), (3, 5)


class UnknownRiotIdError(NotFoundError, ValueError):
    """account-v1 answers 404 for the Riot ID: no such account (a 404 that is also bad input)."""


def parse_riot_id(riot_id: str) -> tuple[str, str]:
    """``"gameName#tagLine"`` -> (game name, tag line); ValueError naming ``riot_id`` otherwise."""
    name, sep, tag = (riot_id or "").strip().rpartition("#")
    name, tag = name.strip(), tag.strip()
    if not sep or "#" in name:
        raise ValueError(f"riot_id: expected 'gameName#tagLine' (e.g. 'Faker#KR1'), got {riot_id!r}")
    if not _NAME_LENGTH[0] <= len(name) <= _NAME_LENGTH[1]:
        raise ValueError(f"riot_id: the game name must have {_NAME_LENGTH[0]}-{_NAME_LENGTH[1]} characters, "
                         f"got {name!r}")
    if not (_TAG_LENGTH[0] <= len(tag) <= _TAG_LENGTH[1] and tag.isalnum()):
        raise ValueError(f"riot_id: the tag line must be {_TAG_LENGTH[0]}-{_TAG_LENGTH[1]} letters or digits, "
                         f"got {tag!r}")
    return name, tag


def parse_platform(platform: str) -> str:
    """A known platform routing value, lower-cased; ValueError naming ``platform`` otherwise."""
    value = (platform or "").strip().lower()
    if value not in PLATFORM_REGION:
        raise ValueError(f"platform: unknown platform {platform!r}; known: {', '.join(PLATFORM_REGION)}")
    return value
