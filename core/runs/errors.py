"""The one shape of a per-item error, in every job's metrics, history row and e-mail."""

from __future__ import annotations

from typing import TypedDict


class ItemError(TypedDict):
    """One item that failed: ``item`` names it (a URN, a puuid, a coin id, a collector's query)."""

    item: str
    error: str


def item_error(item: object, error: object) -> ItemError:
    return {"item": str(item), "error": str(error)}


def join_errors(errors: list[ItemError], limit: int = 20, *, notes: list[str] | None = None) -> str | None:
    """``notes`` first, then ``item: error`` for the first ``limit`` errors; None when empty."""
    parts = list(notes or [])
    parts += [f"{e['item']}: {e['error']}" for e in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"... and {len(errors) - limit} more item errors")
    return "; ".join(parts) or None


def unexpected_error(exc: BaseException) -> str:
    """A run's one-line summary of an error none of its steps expected (the full traceback
    goes to the log): ``unexpected error: Type: first line``."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"unexpected error: {type(exc).__name__}: {first_line}"[:500]
