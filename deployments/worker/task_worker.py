"""A Prefect task worker for the shares of profile-fetcher runs (``tasks.profiles.share``).

    uv run python -m deployments.worker.task_worker [--limit 1]

Start one per core on any machine that has the code and the same environment as the pool's
process workers (``PREFECT_API_URL``, ``DATABASE_URL``, ``STORAGE_URL``, ``RAPIDAPI_*``). It
subscribes to the Prefect server over a websocket and runs each share it is pushed at once;
``--limit`` shares at a time (each already runs ``rapidapi.concurrency`` requests). With
workers on more than one machine, the shares' parameters need a store they all read: set
``PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK`` (e.g. an ``s3-bucket`` block) for every
process; on one machine Prefect's local storage serves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

import orjson
import websockets.exceptions
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

# A share's own lines go to its task run; Prefect warns for each line of a background task run
# logged outside a flow run, which is every line here.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

from prefect.client.schemas.objects import StateType, TaskRun
from prefect.client.subscriptions import Subscription
from prefect.exceptions import ObjectNotFound
from prefect.logging.loggers import get_logger
from prefect.settings import get_current_settings
from prefect.task_worker import StopTaskWorker, TaskWorker

from tasks.profiles.share import fetch_share

logger = get_logger("jobpipes.task_worker")
FREE_POLL_SECONDS = 0.05
UNSEEN_RUN_SECONDS = 10.0  # how long a pushed task run may be unreadable before it is skipped


class _AckWhenFree(Subscription[TaskRun]):
    """Prefect's subscription acknowledges a task run as soon as it arrives, and the server then
    hands this worker the next one at once: a worker busy with ``--limit`` shares takes one
    more and sits on it while an idle worker waits (measured: a share started only after the
    run had finished alone). Here the acknowledgement, after which the server picks the next
    task run for this socket, waits until the worker has a free slot, so each share goes to a
    worker that can start it now. The server re-queues a task run whose socket closes before it
    is acknowledged; the worker that gets it again skips it (``_ShareWorker``)."""

    def __init__(self, worker: TaskWorker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._worker = worker
        self._unacknowledged = False

    async def __anext__(self) -> TaskRun:
        while True:
            try:
                await self._ensure_connected()
                if self._unacknowledged:
                    while (free := self._worker.available_tasks) is not None and free < 1:
                        await asyncio.sleep(FREE_POLL_SECONDS)
                    await self.websocket.send(orjson.dumps({"type": "ack"}).decode())
                    self._unacknowledged = False
                message = await self.websocket.recv()
                self._unacknowledged = True
                return self.model.model_validate_json(message)
            except (ConnectionRefusedError, websockets.exceptions.ConnectionClosedError):
                self._websocket, self._unacknowledged = None, False
                if hasattr(self._connect, "protocol"):
                    await self._connect.__aexit__(None, None, None)
                await asyncio.sleep(0.5)


class _ShareWorker(TaskWorker):
    def handle_sigterm(self, signum: int, frame: object) -> None:
        """SIGTERM stops it like Ctrl-C. Prefect's own handler raises ``StopTaskWorker`` from
        inside the signal handler, which escapes ``asyncio.run`` as a traceback."""
        raise KeyboardInterrupt

    async def _subscribe_to_task_scheduling(self) -> None:
        """Prefect's loop with ``_AckWhenFree``, skipping a task run that is no longer scheduled
        (delivered again after the worker that had it died: its run has released it)."""
        base_url = get_current_settings().api.url
        if base_url is None:
            raise ValueError("PREFECT_API_URL must be set: task workers serve a Prefect server")
        logger.info("Subscribing to runs of task(s): %s", " | ".join(sorted(self.task_keys)))
        subscription = _AckWhenFree(self, model=TaskRun, path="/task_runs/subscriptions/scheduled",
                                    keys=self.task_keys, client_id=self.client_id, base_url=base_url)
        async for task_run in subscription:
            current = await self._read(task_run)
            if current is None:
                continue
            if current.state is not None and current.state.type not in (StateType.SCHEDULED, StateType.PENDING):
                logger.info("Skipped task run %s - %s: it is %s already", task_run.id, task_run.name,
                            current.state.name)
                continue
            logger.info("Received task run: %s - %s", task_run.id, task_run.name)
            if await self._acquire_token(task_run.id):
                assert self._runs_task_group is not None, "Task group was not initialized"
                self._runs_task_group.start_soon(self._safe_submit_scheduled_task_run, task_run)


    async def _read(self, task_run: TaskRun) -> TaskRun | None:
        """The task run as the API holds it now. Under load the server can push a task run over
        the websocket before its row is readable (404 for a moment, seen with two workers on 2
        cores): read again with backoff; one never readable is skipped (its run fetches the
        share's work itself) instead of stopping the worker."""
        try:
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(ObjectNotFound),
                                               wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
                                               stop=stop_after_delay(UNSEEN_RUN_SECONDS), reraise=True):
                with attempt:
                    return await self._client.read_task_run(task_run.id)
        except ObjectNotFound:
            logger.warning("Skipped task run %s - %s: not readable from the API after %g s", task_run.id,
                           task_run.name, UNSEEN_RUN_SECONDS)
        return None


async def serve(limit: int) -> None:
    """Prefect's ``serve`` for ``fetch_share``, keeping its fixed task key: the worker registers
    copies of the task (``with_options``), which would take Prefect's path-dependent key again."""
    worker = _ShareWorker(fetch_share, limit=limit)
    for registered in worker.tasks:
        registered.task_key = fetch_share.task_key
    try:
        await worker.astart()
    except BaseExceptionGroup as group:  # anyio's task group: stopping is not an error
        _, unexpected = group.split((StopTaskWorker, asyncio.CancelledError, KeyboardInterrupt))
        if unexpected:
            raise unexpected from None
    except (StopTaskWorker, asyncio.CancelledError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.worker.task_worker")
    parser.add_argument("--limit", type=int, default=1,
                        help="shares this process runs at once (default 1: start one process per core)")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    if get_current_settings().api.url is None:  # Prefect would start a temporary server nobody sends to
        parser.error("PREFECT_API_URL is not set: a task worker takes shares from the Prefect server that runs "
                     "the profile-fetcher deployment. Set it to that server's API (with `uv run jobpipes up` "
                     "running: eval \"$(uv run jobpipes env)\")")
    # SIGTERM stops it like Ctrl-C. A share cut off keeps its claims until its run (or the next
    # run) sees it silent for ``rapidapi.shareDeadAfterSeconds`` and releases them exactly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(serve(args.limit))
    except (KeyboardInterrupt, StopTaskWorker):
        pass


if __name__ == "__main__":
    main()
