"""The fetch stage: one Prefect task, ``fetch-profiles``, that runs a pipeline of claimed batches.

A task run is not free: about 3 ms in the flow's process and, measured on this project's
2-core machine, about 40 ms of Prefect API server CPU to record its states and events. One
task per batch of 10 cost more than the fetching itself, so the fetcher's Prefect task is a
*stage*: up to ``rapidapi.entriesPerTask`` entries, after which the flow starts the next
stage. Inside a stage the batch stays the unit of safety:
- each batch is claimed with its quota reservation in one transaction (``claim_batch``) and
  written with its settlement in one transaction (``process_batch``);
- up to ``rapidapi.batchesInFlight`` batches run at once (the next is claimed and fetching
  while the previous one finishes its answers and writes), sharing one client, one object
  store and ``rapidapi.concurrency`` requests in flight;
- a batch that fails unexpectedly stops its other fetches and gives its claims back exactly
  (``tasks.profiles.release``: what it stored adopted, what it sent counted, the rest of its
  reservation released); the other batches finish, and the stage reports the error.
A crash of the process leaves at most ``batchesInFlight`` batches claimed, which the next
run or the ``release-crashed-run`` flow releases exactly (``tasks.profiles.recovery``).
The task logs its progress every few seconds and when it ends."""


from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.db import session_scope
from core.profiles.client import RapidApiClient
from core.profiles.entries import ClaimedEntry, count_by_status
from core.profiles.models import EntryStatus
from core.profiles.quota import PROVIDER
from core.profiles.tally import RunTally
from core.runs.errors import item_error, unexpected_error
from core.runs.progress import Progress
from core.settings import get_settings
from tasks._common import db_url, ride_out, ride_out_db, shared_limits
from tasks.profiles.batch import (
    BatchContext,
    BatchReport,
    RequestMarks,
    UnsettledBatch,
    process_batch,
)
from tasks.profiles.ledger import (
    QuotaGrant,
    claim_batch,
    finished_entries,
    mark_quota_exhausted,
    reset_schedule,
    settle_grant,
)
from tasks.profiles.release import release_lost_claims
from tasks.progress import report_progress
from tasks.storage import open_store

T = TypeVar("T")

PROGRESS_EVERY_SECONDS = 5.0  # a stage logs its progress at most this often, and when it ends


@dataclass
class StageResult:
    """What a stage did, counted on its own; ``more``: it stopped only at its own bound, so
    the run goes on with another stage."""

    tally: RunTally
    more: bool


async def _in_thread(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """A database step (claim, settlement, release), off the event loop, riding out an outage
    within ``database.outageBudgetSeconds`` (``tasks._common.ride_out_db``)."""
    return await ride_out_db(functools.partial(fn, **kwargs), *args, what=getattr(fn, "__name__", "a database step"))


@task(name="fetch-profiles", cache_policy=NO_CACHE)
async def fetch_profile_stage(
    run_id: str, size: int, respect: bool, *, max_batches: int | None = None, processed_before: int = 0,
    progress_id: uuid.UUID | None = None, run_started: float | None = None,
) -> StageResult:
    """Claim and process batches of ``size`` until none are left, the quota runs out, a fatal
    provider error or an unexpected one stops the run, ``max_batches`` is reached, or this
    stage has claimed ``rapidapi.entriesPerTask`` entries (then ``more`` is True).
    ``processed_before``: what the run processed in its earlier stages; ``progress_id``: the
    run's progress artifact, updated with each progress line (``run_started``: its epoch time)."""
    settings = get_settings()
    url = db_url(settings)
    reset = await _in_thread(reset_schedule)  # read once per stage, not once per claim
    stage = _Stage(run_id, size, respect, max_batches, processed_before, reset)
    stage.progress_id, stage.run_started = progress_id, run_started or time.time()
    marks = RequestMarks(url)
    async with RapidApiClient(settings.rapidapi, **shared_limits(settings)) as client:
        ctx = BatchContext(url, client, open_store(settings.storage_url),
                           asyncio.Semaphore(settings.rapidapi.concurrency), marks)
        try:
            await stage.run(ctx)
        finally:
            await marks.close()
    return StageResult(stage.tally, stage.more)


class _Stage:
    """The pipeline of one stage: claims while fewer than ``batchesInFlight`` batches run,
    counts each batch as it finishes, stops claiming at the first reason to."""

    def __init__(self, run_id: str, size: int, respect: bool, max_batches: int | None,
                 processed_before: int, reset: tuple[str, str]) -> None:
        settings = get_settings()
        self.run_id, self.size, self.respect = run_id, size, respect
        self.max_batches, self.processed_before = max_batches, processed_before
        self.limit, self.depth = settings.rapidapi.monthly_quota, settings.rapidapi.batches_in_flight
        self.bound = settings.rapidapi.entries_per_task
        self.reset = reset
        self.tally, self.claimed = RunTally(), 0
        self.claiming, self.more = True, False
        self.drained = False  # claiming stopped at an empty queue with no lost claim found
        self.in_flight: dict[asyncio.Task[BatchReport], tuple[list[ClaimedEntry], QuotaGrant]] = {}
        self.logged = time.monotonic()
        self.progress_id: uuid.UUID | None = None
        self.run_started = time.time()

    async def run(self, ctx: BatchContext) -> None:
        while self.claiming or self.in_flight:
            while self.claiming and len(self.in_flight) < self.depth:
                await self._claim(ctx)
            if not self.in_flight:
                break
            await self._collect()
            if time.monotonic() - self.logged >= PROGRESS_EVERY_SECONDS:
                await self._log_progress()
        if not self.drained:  # the drained queue's check found nothing lost, and nothing was claimed after it
            await self._release_lost()
        await self._log_progress()

    async def _release_lost(self) -> int:
        """Release this claimant's FETCHING entries that no batch in flight works on (a claim
        committed as its connection dropped, then claimed again: ``release_lost_claims``), so a
        database outage leaves nothing claimed behind; how many. Best effort: what it cannot
        release, the next run's timeout sweep does."""
        working = {e.id for batch, _ in self.in_flight.values() for e in batch}
        try:
            lost = await ride_out(lambda: release_lost_claims(self.run_id, working), what="the lost claims' release")
        except Exception:  # noqa: BLE001 - the entries stay FETCHING for the sweep
            get_run_logger().warning("could not check for claims lost in an outage", exc_info=True)
            return 0
        if lost:
            get_run_logger().warning("%d entries of a claim whose answer was lost in a database outage: "
                                     "PENDING again, their reservation given back", lost)
        return lost

    async def _log_progress(self) -> None:
        """One line: done of total entries (what this run processed, holds and can still take:
        the pending entries, bounded by the quota and ``max_batches``), percent, time left."""
        t = self.tally
        self.logged = time.monotonic()
        done = self.processed_before + t.processed
        holding = sum(len(batch) for batch, _ in self.in_flight.values())
        try:
            # Best effort, no outage budget: a progress line must not hold up the pipeline.
            waiting = (await ride_out_db(_pending, what="the progress line", budget=0)
                       if self.claiming or self.more else 0)
        except Exception:  # noqa: BLE001 - a progress line is not worth failing the stage
            waiting = 0
        if self.respect and t.quota_remaining is not None:
            waiting = min(waiting, max(0, t.quota_remaining))
        if self.max_batches is not None:
            waiting = min(waiting, max(0, self.max_batches - t.batches - len(self.in_flight)) * self.size)
        progress = Progress(done, done + holding + waiting, time.time() - self.run_started)
        get_run_logger().info("progress: %s entries; %d completed, %d failed, %d API calls in %d batches; %s",
                              progress.line(), t.succeeded, t.failed, t.api_calls, t.batches,
                              "claiming" if self.claiming else "next stage" if self.more else "done")
        await report_progress(self.progress_id, "profile_fetcher", progress)

    async def _collect(self) -> None:
        """Count the batches that finished (waits for at least one)."""
        done, _ = await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
        for job in done:
            batch, grant = self.in_flight.pop(job)
            error = job.exception()
            if error is not None:
                get_run_logger().error("a batch of %d failed", len(batch), exc_info=error)
                self.tally.fatal_error = self.tally.fatal_error or unexpected_error(error)
                self.claiming = self.more = False
                await _count_failed(self.tally, batch)
                if isinstance(error, UnsettledBatch):
                    await _settle_again(self.tally, error)
            elif not await _count(self.tally, job.result(), grant, self.processed_before):
                self.claiming = self.more = False

    async def _claim(self, ctx: BatchContext) -> None:
        """Claim one more batch and start it, or set why claiming stops."""
        tally = self.tally
        if self.max_batches is not None and tally.batches + len(self.in_flight) >= self.max_batches:
            self.claiming = False
            return
        if self.claimed >= self.bound:
            self.claiming, self.more = False, True
            return
        try:
            claim = await _in_thread(claim_batch, PROVIDER, self.size, self.run_id, monthly_limit=self.limit,
                                     respect_quota=self.respect, reset=self.reset)
        except Exception as exc:  # noqa: BLE001 - the batches in flight still finish
            get_run_logger().exception("could not claim a batch")
            tally.fatal_error = tally.fatal_error or unexpected_error(exc)
            self.claiming = False
            return
        tally.quota_remaining = claim.grant.remaining
        if claim.quota_granted == 0:
            self.claiming = False
            if self.processed_before + tally.processed == 0 and not self.in_flight:
                tally.quota_exceeded_at_start = True
                tally.notes.append("monthly quota exhausted before the run started")
            else:
                tally.stopped_by_quota = True  # the flow notes it once every batch counts
            return
        if claim.quota_granted < self.size:
            get_run_logger().info("quota nearly spent: granted %d of %d", claim.quota_granted, self.size)
        if not claim.entries:  # none left, unless a claim lost in an outage holds some
            self.claiming = await self._release_lost() > 0
            self.drained = not self.claiming
            return
        self.claimed += len(claim.entries)
        job = asyncio.ensure_future(process_batch(claim.entries, claim.grant, ctx))
        self.in_flight[job] = (claim.entries, claim.grant)


def _pending() -> int:
    with session_scope(db_url()) as session:
        return count_by_status(session).get(EntryStatus.PENDING, 0)


async def _count(tally: RunTally, report: BatchReport, grant: QuotaGrant, processed_before: int) -> bool:
    """Add a finished batch to the stage; False when the run must stop claiming."""
    tally.quota_remaining = report.quota_remaining
    tally.add_batch(succeeded=report.succeeded, errors=report.errors, api_calls=report.api_calls,
                    created=report.created, updated=report.updated, deferred=report.deferred)
    if report.provider_quota_exhausted:
        await _in_thread(mark_quota_exhausted, grant)
        tally.quota_remaining = 0
        tally.stopped_by_quota = True
        if processed_before + tally.processed == 0:
            tally.quota_exceeded_at_start = True
        tally.notes.append(f"provider reports the monthly quota spent: {report.fatal_error}")
        return False
    if report.fatal_error:
        tally.fatal_error = tally.fatal_error or report.fatal_error
        return False
    if report.sink_down:
        # Stop spending: what is held goes back to PENDING, the unspent reservation is released
        # with the batch's settlement; with nothing kept at all the run is FAILED for it.
        reason = f"storage unavailable: {report.sink_down}"
        if processed_before + tally.succeeded == 0:
            tally.fatal_error = tally.fatal_error or reason
        elif reason not in tally.notes:
            tally.notes.append(f"{reason}; stopped claiming")
        return False
    return True


async def _count_failed(tally: RunTally, batch: list[ClaimedEntry]) -> None:
    """After a batch failed unexpectedly: it gave its claims back itself (``process_batch``:
    what it stored adopted, what it sent counted, the rest of its reservation released; or, if
    the database is what failed, the run's release does it later); count what it finished."""
    try:
        done = await _in_thread(finished_entries, [e.id for e in batch])
    except Exception as exc:  # noqa: BLE001 - keep the original error; this one is logged
        get_run_logger().error("could not count the failed batch: %s: %s", type(exc).__name__, exc)
        return
    errors = [item_error(o.urn, o.error) for o in done if o.error is not None]
    tally.add_batch(succeeded=len(done) - len(errors), errors=errors, api_calls=0)
    tally.notes.append(f"a batch of {len(batch)} failed: {len(done) - len(errors)} completed,"
                       f" {len(errors)} failed, {len(batch) - len(done)} re-queued")


async def _settle_again(tally: RunTally, unsettled: UnsettledBatch) -> None:
    """The batch's settlement failed (not an outage, or one past its budget): once more, with
    the calls it counted; if that fails too, the reservation stays and is logged."""
    try:
        tally.quota_remaining = await _in_thread(settle_grant, unsettled.grant, unsettled.used)
    except Exception as exc:  # noqa: BLE001
        get_run_logger().error("could not settle the failed batch's quota (%d calls used of %d reserved):"
                               " %s: %s", unsettled.used, unsettled.grant.granted, type(exc).__name__, exc)


async def fetch_stages(
    tally: RunTally, claimant: str, size: int, respect: bool, max_batches: int | None,
    progress_id: uuid.UUID | None = None,
) -> None:
    """Fetch stage after stage (one ``fetch-profiles`` task of up to ``rapidapi.entriesPerTask``
    entries, a pipeline of batches inside), claiming as ``claimant`` (a run, or one of its
    shares), until none are left, the quota runs out, an error stops it or ``max_batches`` is
    reached. Every stage moves the run's progress artifact (``progress_id``)."""
    started = time.time()
    while max_batches is None or tally.batches < max_batches:
        left = None if max_batches is None else max_batches - tally.batches
        stage = await fetch_profile_stage(claimant, size, respect, max_batches=left, processed_before=tally.processed,
                                          progress_id=progress_id, run_started=started)
        tally.merge(stage.tally)
        if not stage.more:
            break
