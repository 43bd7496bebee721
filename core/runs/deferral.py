"""When a provider says "later": which errors mean it, when the item may be tried again, and how
a run that deferred items ends.

A 429 or a 5xx (or no answer at all) after the client's retries is not the item's fault: the
item goes back to its pending state with a not-before time (the provider's ``Retry-After``,
else the family's ``deferSeconds``, never beyond its ``deferMaxSeconds``) and a later run takes
it without a person. A run that deferred items is PARTIAL, and its summary says how many."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from core.db.types import utcnow
from core.errors import NetworkError, RateLimitedError, ServerError
from core.runs.history import RunOutcome, RunRecord
from core.runs.models import RunStatus


def is_later(exc: BaseException) -> bool:
    """The provider refused for now (429, 5xx, no answer) and nothing says it always will."""
    return isinstance(exc, RateLimitedError | ServerError | NetworkError) and not exc.fatal


def not_before(exc: BaseException, *, defer_seconds: float, defer_max_seconds: float,
               now: datetime | None = None) -> datetime:
    """When a deferred item may be tried again: ``Retry-After`` when the provider gave one, else
    ``defer_seconds``, never beyond ``defer_max_seconds``."""
    wait = getattr(exc, "retry_after", None) or defer_seconds
    return (now or utcnow()) + timedelta(seconds=min(wait, defer_max_seconds))


def deferred_note(count: int, what: str) -> str:
    return f"{count} {what} deferred: the provider said later (429/5xx); a later run takes them"


def with_deferred(record: RunRecord, count: int, what: str) -> RunRecord:
    """``record`` with ``count`` deferred ``what``: a SUCCESS becomes PARTIAL, the summary says
    how many (first), and ``metrics["deferred"]`` counts them; other statuses stay."""
    if not count:
        return record
    status = RunStatus.PARTIAL.value if record.status == RunStatus.SUCCESS else record.status
    note = deferred_note(count, what)
    summary = "; ".join(filter(None, [note, record.error_summary]))
    return replace(record, status=status, error_summary=summary, metrics={**record.metrics, "deferred": count})


def counting_deferred(what: str) -> RunOutcome:
    """A run's outcome (``tasks.runs.run_job``) that counts ``metrics["deferred"]`` with
    :func:`with_deferred`."""
    return lambda record, _raised: with_deferred(record, int(record.metrics.get("deferred") or 0), what)
