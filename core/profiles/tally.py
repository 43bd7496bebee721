"""Pure bookkeeping of one fetch run: counters, errors and the final status (seed 000)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.runs.deferral import deferred_note
from core.runs.errors import ItemError, join_errors, unexpected_error
from core.runs.history import RunRecord
from core.runs.models import RunStatus


@dataclass
class RunTally:
    """Counters a run accumulates batch after batch."""

    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    created: int = 0
    updated: int = 0
    api_calls: int = 0
    batches: int = 0
    deferred: int = 0  # entries the provider refused for now, back to PENDING with a not-before time
    errors: list[ItemError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped_by_quota: bool = False
    quota_exceeded_at_start: bool = False
    fatal_error: str | None = None
    quota_remaining: int | None = None  # the ledger after the last reservation or settlement

    def add_batch(
        self, *, succeeded: int, errors: list[ItemError], api_calls: int,
        created: int = 0, updated: int = 0, deferred: int = 0,
    ) -> None:
        self.batches += 1
        self.deferred += deferred
        self.created += created
        self.updated += updated
        self.processed += succeeded + len(errors)
        self.succeeded += succeeded
        self.failed += len(errors)
        self.errors.extend(errors)
        self.api_calls += api_calls

    def merge(self, other: RunTally) -> None:
        """Add a part of the run (one fetch stage) counted on its own."""
        for name in ("processed", "succeeded", "failed", "created", "updated", "api_calls", "batches", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.notes.extend(other.notes)
        self.stopped_by_quota |= other.stopped_by_quota
        self.quota_exceeded_at_start |= other.quota_exceeded_at_start
        self.fatal_error = self.fatal_error or other.fatal_error
        if other.quota_remaining is not None:
            self.quota_remaining = other.quota_remaining

    def status(self) -> RunStatus:
        """QUOTA_EXCEEDED if nothing could start; FAILED on a fatal error or when every
        processed entry failed; PARTIAL if quota stopped the run mid-way or some entries
        failed; SUCCESS otherwise (including a run that found nothing to do)."""
        if self.quota_exceeded_at_start:
            return RunStatus.QUOTA_EXCEEDED
        if self.fatal_error or (self.processed > 0 and self.succeeded == 0):
            return RunStatus.FAILED
        if self.stopped_by_quota or self.failed or self.deferred:
            return RunStatus.PARTIAL
        return RunStatus.SUCCESS

    def error_summary(self, limit: int = 20) -> str | None:
        """Run-level notes first, then per-entry errors, joined; None when there are none."""
        later = [deferred_note(self.deferred, "entries")]
        notes = ([self.fatal_error] if self.fatal_error else []) + self.notes + (later if self.deferred else [])
        return join_errors(self.errors, limit, notes=notes)

    def to_record(self, record: RunRecord, error: BaseException | None, **fields: Any) -> RunRecord:
        """The run's record: ``record`` (times, ids, params) with this tally's counts and status;
        an exception that ended the run is its fatal error. ``fields`` are set as given."""
        if error is not None and self.fatal_error is None:
            self.fatal_error = unexpected_error(error)
        return replace(record, status=self.status().value, total_processed=self.processed,
                       successful_count=self.succeeded, failed_count=self.failed, items_created=self.created,
                       items_updated=self.updated, items_skipped=0, api_calls_made=self.api_calls,
                       quota_remaining=self.quota_remaining, error_summary=self.error_summary(), **fields)
