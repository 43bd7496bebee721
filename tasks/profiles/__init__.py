"""Profile-fetcher tasks (seed 000): job config, reserve and claim, one task per batch, settle, release.

One task per batch: fetch -> store raw -> clean -> store cleaned -> upsert -> finish entries.
Inside it, fetches run with bounded concurrency (``rapidapi.concurrency``). The database is
written once per batch in one transaction; if that fails, entry by entry, so that one bad row
fails only its entry. An entry that could not be written at all stays FETCHING and the stale
sweep of a later run puts it back to PENDING: nothing is lost. A run that died (SIGKILL, a
lost machine) is released at once by ``release_run_claims``: the next run, or the
``release-crashed-run`` flow, adopts what it fetched and gives back the rest.

One package, the family's one home in ``tasks/``: ``ledger`` (the small database tasks),
``batch`` (the batch task), ``recovery`` (dead runs' claims, parallel runs)."""

from tasks.profiles.batch import BatchReport, discard_objects, process_profile_batch, release_gate
from tasks.profiles.ledger import (
    Claim,
    QuotaGrant,
    add_pending_entries,
    finished_entries,
    load_job_config,
    mark_provider_quota_exhausted,
    release_entries,
    release_stale_entries,
    requeue_failed_entries,
    reserve_and_claim,
    settle_in_session,
    settle_quota,
    start_quota_period,
)
from tasks.profiles.recovery import release_dead_claims, release_run_claims, start_parallel_runs

__all__ = [
    "BatchReport", "Claim", "QuotaGrant", "add_pending_entries", "discard_objects", "finished_entries",
    "load_job_config", "mark_provider_quota_exhausted", "process_profile_batch", "release_dead_claims",
    "release_entries", "release_gate", "release_run_claims", "release_stale_entries", "requeue_failed_entries",
    "reserve_and_claim", "settle_in_session", "settle_quota", "start_parallel_runs", "start_quota_period",
]
