"""A cited source of an AI answer: the one definition the collectors client and scoring share."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Citation:
    url: str
    domain: str  # host without "www."
    title: str | None = None


def domain_of(url: str) -> str:
    """Lower-case host without a leading "www." ("" when there is none)."""
    url = url.strip()
    parts = urlsplit(url if "//" in url else "//" + url)
    host = parts.hostname or ""
    return host[4:] if host.startswith("www.") else host
