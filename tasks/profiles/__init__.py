"""Profile-fetcher tasks (seed 000): job config, the fetch stage, ledger steps, release, queue.

A run is a sequence of ``fetch-profiles`` stage tasks; each claims batches (a batch's claim
and its quota reservation are one transaction), fetches them in a pipeline with bounded
concurrency (``rapidapi.concurrency``) and writes each batch in one transaction with its
settlement; if that fails, entry by entry, so that one bad row fails only its entry. An
entry that could not be written at all stays FETCHING and the stale sweep of a later run
puts it back to PENDING: nothing is lost. A run that died (SIGKILL, a lost machine) is
released at once by ``release_run_claims``: the next run, or the ``release-crashed-run``
flow, adopts what it fetched and gives back the rest.

One package, the family's one home in ``tasks/``: ``ledger`` (the small database steps),
``batch`` (one claimed batch), ``stage`` (the fetch task), ``release`` (giving claims back
exactly: a failed batch, a dead run, the timeout sweep), ``recovery`` (before a run), ``share`` (one run over many task
workers)."""

from tasks.profiles.batch import BatchReport, process_batch
from tasks.profiles.ledger import (
    Claim,
    QuotaGrant,
    add_pending_entries,
    claim_batch,
    load_job_config,
    requeue_failed_entries,
    settle_grant,
    start_quota_period,
)
from tasks.profiles.recovery import (
    Recovered,
    recover_before_run,
    release_dead_claims,
)
from tasks.profiles.release import discard_objects, release_claims, release_run_claims
from tasks.profiles.share import fetch_share, settle_shares, start_shares
from tasks.profiles.stage import StageResult, fetch_profile_stage, fetch_stages

__all__ = [
    "BatchReport", "Claim", "QuotaGrant", "Recovered", "StageResult", "add_pending_entries", "claim_batch", "discard_objects",
    "fetch_profile_stage", "load_job_config", "process_batch", "recover_before_run", "release_claims", "release_dead_claims", "release_run_claims",
    "requeue_failed_entries", "settle_grant", "settle_shares", "start_quota_period", "start_shares",
    "fetch_share", "fetch_stages",
]
