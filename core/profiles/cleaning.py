"""Pure profile logic: URN validation, object keys, cleaning, row mapping (seed 000)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from core.errors import InvalidUrnError

# LinkedIn member URNs are URL-safe base64-ish ids ("ACoAAAEkwwAB9KEc..."). Anything else,
# in particular "/", "." or "\\", could escape the "profiles/" prefix of the object keys.
_URN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

CLEANED_FIELDS = (
    "urn", "username", "firstName", "lastName", "headline",
    "geo", "educations", "fullPositions", "skills",
)


def validate_urn(urn: object) -> str:
    """Return ``urn`` if it is safe to fetch and to use in an object key; raise otherwise."""
    if not isinstance(urn, str) or not _URN_RE.fullmatch(urn):
        raise InvalidUrnError(
            f"invalid URN {urn!r}: expected 1-128 characters of A-Z, a-z, 0-9, '_' or '-'"
        )
    return urn


def object_keys(urn: str, fetched_at: datetime) -> tuple[str, str]:
    """The raw and cleaned object keys: ``profiles/<urn>-<unix_ts>-raw.json`` and ``-cleaned``."""
    base = f"profiles/{validate_urn(urn)}-{int(fetched_at.timestamp())}"
    return f"{base}-raw.json", f"{base}-cleaned.json"


def clean_profile(raw: dict[str, Any]) -> dict[str, Any]:
    """Keep only the seed's fields; a missing field is present as None."""
    return {field: raw.get(field) for field in CLEANED_FIELDS}


def profile_row(
    urn: str, cleaned: dict[str, Any], *, raw_key: str, cleaned_key: str, fetched_at: datetime
) -> dict[str, Any]:
    """The ``profiles`` row for an upsert. ``urn`` is the one we asked for, not the body's."""
    return {
        "urn": urn,
        "username": _text(cleaned.get("username")),
        "first_name": _text(cleaned.get("firstName")),
        "last_name": _text(cleaned.get("lastName")),
        "headline": _text(cleaned.get("headline")),
        "geo": cleaned.get("geo") if isinstance(cleaned.get("geo"), dict) else None,
        "educations": _list(cleaned.get("educations")),
        "full_positions": _list(cleaned.get("fullPositions")),
        "skills": _list(cleaned.get("skills")),
        "raw_s3_key": raw_key,
        "cleaned_s3_key": cleaned_key,
        "fetched_at": fetched_at,
        "created_at": fetched_at,
        "updated_at": fetched_at,
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None
