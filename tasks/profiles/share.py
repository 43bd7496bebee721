"""One profile-fetcher run over many workers: shares taken by Prefect task workers.

A run with ``parallel_runs`` = N fetches itself and hands N - 1 shares to Prefect's background
tasks (``fetch_share.delay``): the server pushes each one over its websocket to a task worker
(``python -m deployments.worker.task_worker``) that is already running, imported and subscribed, so a
share starts within about a second, not after a worker's poll, a process start and a clone.
No split is fixed: the run and every share claim batches from the one queue until none are
left (``FOR UPDATE SKIP LOCKED``), so a fast worker takes more and a busy one less, and they
all share the quota ledger and the RapidAPI budget (``core.http.shared_limiter``).

The run supervises its shares through their rows (``core.profiles.shares``): when it finds
nothing more to claim it cancels the shares no worker took, waits for the running ones, and
releases a share that stopped beating (its worker died) exactly as it would a dead run
(``release_run_claims``: what it stored adopted, what it sent billed, the rest back to
PENDING with its reservation), then fetches what came back itself. So a worker that dies
mid-run costs only the batches it held, which the same run finishes. Every share's counts
join the run's history row. Outside a Prefect server (the ephemeral API of a notebook) there
are no task workers: the run does all the work itself."""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from prefect import get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import EngineContext, TaskRunContext
from prefect.settings import get_current_settings
from prefect.states import Cancelled, Crashed

from core.db import session_scope
from core.profiles import shares
from core.profiles.models import ShareState
from core.profiles.tally import RunTally
from core.runs.errors import unexpected_error
from core.settings import get_settings
from tasks._common import db_url, ride_out_db
from tasks.profiles.release import release_run_claims
from tasks.profiles.stage import fetch_stages

SUPERVISE_SECONDS = 1.0  # how often a run looks at its running shares


def _in_db(fn: Callable[..., Any]) -> Callable[..., Any]:
    def step(*args: Any) -> Any:
        with session_scope(db_url()) as session:
            return fn(session, *args)
    step.__name__ = fn.__name__
    return step


async def _db(fn: Callable[..., Any], *args: Any) -> Any:
    return await ride_out_db(_in_db(fn), *args, what=f"fetch shares: {fn.__name__}")


# -- in a task worker --------------------------------------------------------------------
@task(name="fetch-profiles-share", cache_policy=NO_CACHE, persist_result=False)
async def fetch_share(share_id: str, run_id: str, size: int, respect: bool) -> str:
    """Claim and fetch batches as ``share_id`` (a share of run ``run_id``) until none are left,
    beating the share's row; its tally goes to the row. Returns the share's final state."""
    logger = get_run_logger()
    if not await _db(shares.start, share_id, f"{socket.gethostname()}:{os.getpid()}"):
        logger.info("share %s of run %s: its run no longer needs it", share_id, run_id)
        return ShareState.CANCELLED.value
    tally = RunTally()
    work = asyncio.ensure_future(fetch_stages(tally, share_id, size, respect, None))
    beating = asyncio.ensure_future(_beat(share_id, work))
    try:
        await work
    except asyncio.CancelledError:
        if not beating.done() or beating.result():
            raise
        logger.warning("share %s was released by its run (it had stopped beating): stopped", share_id)
        return ShareState.RELEASED.value
    except Exception as exc:  # noqa: BLE001 - counted as the share's fatal error, like a run's
        logger.exception("share %s failed", share_id)
        tally.fatal_error = tally.fatal_error or unexpected_error(exc)
    finally:
        beating.cancel()
    if tally.quota_exceeded_at_start:  # the run started before it, so the quota ran out mid-run
        tally.quota_exceeded_at_start, tally.stopped_by_quota = False, True
        tally.notes = [n for n in tally.notes if "before the run started" not in n]
    if not await _db(shares.finish, share_id, tally):
        logger.warning("share %s was released by its run meanwhile: its counts are the release's", share_id)
        return ShareState.RELEASED.value
    logger.info("share %s: %d entries (%d completed, %d failed) in %d batches",
                share_id, tally.processed, tally.succeeded, tally.failed, tally.batches)
    return ShareState.DONE.value


# The key task workers subscribe by. Prefect derives a task's key from its code object, whose
# file name is the absolute path of the module: a task worker running a clone elsewhere (another
# directory, another machine, an image) would never be pushed the runs of a flow run whose code
# came from the pull step. One fixed key, versioned with the share's parameters, matches them.
fetch_share.task_key = "jobpipes-fetch-profiles-share-v1"


async def _beat(share_id: str, work: asyncio.Future[None]) -> bool:
    """Beat every ``BEAT_SECONDS`` while ``work`` runs; stop it if the run released the share
    (returns False then)."""
    while not work.done():
        await asyncio.sleep(shares.BEAT_SECONDS)
        try:
            alive = await ride_out_db(_in_db(shares.beat), share_id, what="a share's beat", budget=0)
        except Exception:  # noqa: BLE001 - a missed beat is not fatal; shareDeadAfterSeconds spans many
            continue
        if not alive:
            work.cancel()
            return False
    return True


# -- in the run ----------------------------------------------------------------------------
def task_workers_reachable() -> bool:
    """Task workers subscribe to a Prefect server: none can serve the ephemeral API."""
    return bool(get_current_settings().api.url)


async def start_shares(run_id: str, count: int, size: int, respect: bool) -> list[str]:
    """Hand ``count`` shares of run ``run_id`` to the task workers; their ids."""
    if count < 1:
        return []
    if not task_workers_reachable():
        get_run_logger().info("no Prefect server (ephemeral API): no task worker can take a share; this run "
                              "fetches alone")
        return []
    ids = [f"share-{uuid.uuid4()}" for _ in range(count)]
    await _db(shares.open_shares, run_id, ids)
    for share_id in ids:
        task_run_id = await asyncio.to_thread(_delay_detached, share_id, run_id, size, respect)
        await _db(shares.set_task_run, share_id, task_run_id)
    get_run_logger().info("handed %d shares to the task workers of fetch-profiles-share", count)
    return ids


def _delay_detached(share_id: str, run_id: str, size: int, respect: bool) -> str:
    """``fetch_share.delay``, outside this flow run's context: ``delay`` stores the caller's run
    context beside the parameters, pickled, and the flow of a run whose code came from a pull
    step pickles as a module no task worker can import (the task worker then drops the run).
    The share needs none of it: it is a background task run of its own."""
    def call() -> str:
        EngineContext.__var__.set(None)  # type: ignore[arg-type]
        TaskRunContext.__var__.set(None)  # type: ignore[arg-type]
        return str(fetch_share.delay(share_id, run_id, size, respect).task_run_id)
    return contextvars.copy_context().run(call)


async def settle_shares(run_id: str, tally: RunTally, refetch: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    """After the run found nothing more to claim: cancel the shares no worker took, wait for
    the running ones, release any that stopped beating and ``refetch`` what came back; add
    every share's counts to ``tally``. Returns a summary for the run's metrics."""
    logger = get_run_logger()
    cancelled: list[str] = []
    released: dict[str, dict[str, int]] = {}
    while True:
        if new := await _db(shares.cancel_unstarted, run_id):
            cancelled += new
            await _set_states(run_id, new, Cancelled(message="its run had finished the work"))
        dead = await _db(_take_dead, run_id)
        for row in dead:
            counts = await release_run_claims(row.id)
            released[row.id] = counts
            _count_released(tally, counts)
            logger.warning("share %s (worker %s) stopped beating: released %s", row.id, row.worker, counts)
        if dead:
            await _set_states(run_id, [r.id for r in dead], Crashed(message="its task worker stopped beating"))
            await refetch()
        if not await _db(shares.running, run_id):
            break
        await asyncio.sleep(SUPERVISE_SECONDS)
    rows = await _db(shares.shares_of, run_id)
    done = [r for r in rows if r.state == ShareState.DONE.value and r.tally is not None]
    for row in done:
        tally.merge(shares.tally_from_json(row.tally))
    return {"shares": len(rows), "done": len(done), "cancelled": len(cancelled), "released": released,
            "workers": sorted({r.worker for r in rows if r.worker})}


def _take_dead(session: Any, run_id: str) -> list[shares.ShareRow]:
    return shares.take_dead(session, run_id=run_id, dead_after=dead_after())


def dead_after() -> timedelta:
    return timedelta(seconds=get_settings().rapidapi.share_dead_after_seconds)


def _count_released(tally: RunTally, counts: dict[str, int]) -> None:
    """What a dead share had finished, and what its release adopted, join the run's counts."""
    completed = counts.get("entries_completed_before", 0) + counts.get("entries_adopted", 0)
    failed = counts.get("entries_failed_before", 0)
    tally.processed += completed + failed
    tally.succeeded += completed
    tally.failed += failed


async def _set_states(run_id: str, share_ids: list[str], state: Any) -> None:
    """Show the shares' ends in Prefect too (best effort: the rows are what counts)."""
    rows = {r.id: r for r in await _db(shares.shares_of, run_id)}
    try:
        async with get_client() as client:
            for share_id in share_ids:
                task_run_id = rows[share_id].task_run_id if share_id in rows else None
                if task_run_id:
                    await client.set_task_run_state(uuid.UUID(task_run_id), state, force=True)
    except Exception as exc:  # noqa: BLE001 - Prefect unreachable: the UI shows it late, nothing is lost
        get_run_logger().warning("could not set the state of shares %s in Prefect: %s: %s", share_ids,
                                 type(exc).__name__, exc)
