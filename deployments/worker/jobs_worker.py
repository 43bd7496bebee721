"""The jobs worker process (seed 002 ``JobsWorker``): claims committed jobs and runs them on Prefect.

    uv run python -m deployments.worker.jobs_worker [--name NAME]

Start as many as you like, on any machines (the engine, ``flows.jobqueue_worker``, says why
that is safe). This module is the process around it: its name, signals and grace period.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import threading

from core.settings import Settings
from deployments.control.scheduled_jobs import sync_all_schedules
from flows.jobqueue_worker import JobsWorker as Engine

log = logging.getLogger("jobpipes.jobs_worker")


class JobsWorker(Engine):
    """The engine (``flows.jobqueue_worker``) with this product's housekeeping: it mirrors the
    ``scheduled_jobs`` table into Prefect schedules (``deployments.control.scheduled_jobs``)."""

    def __init__(self, settings: Settings | None = None, name: str | None = None) -> None:
        super().__init__(settings, name, housekeeping=(sync_all_schedules,))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.worker.jobs_worker")
    parser.add_argument("--name", default=None, help="worker name (default: jobsWorker.name or host name)")
    parser.add_argument("--grace", type=float, default=20.0,
                        help="seconds in-flight jobs get to finish after SIGTERM/SIGINT (default 20)")
    args = parser.parse_args()
    # Prefect configures the root logger when it is imported (basicConfig is then a no-op and
    # the worker's INFO lines were dropped): the product's loggers get a handler of their own.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    ours = logging.getLogger("jobpipes")
    ours.setLevel(logging.INFO)
    ours.addHandler(handler)
    ours.propagate = False
    raise SystemExit(run_until_signalled(JobsWorker(name=args.name), grace=args.grace))


def run_until_signalled(worker: JobsWorker, *, grace: float) -> int:
    """Run ``worker`` in a thread; SIGTERM/SIGINT stop it gracefully, a second one or the
    grace period ending stops the process. Jobs cut off that way stay Running and are
    re-queued by any worker's orphan check once their heartbeat is stale.

    The loop runs off the main thread on purpose: Prefect's flow engine installs its own
    SIGTERM handler (raising ``TerminationSignal`` wherever the main thread happens to
    be) only on the main thread, so here the signal is the worker's to handle."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal signals
        signals += 1
        log.info("worker %s: %s received; %s", worker.name, signal.Signals(signum).name,
                 "stopping now" if signals > 1 else f"finishing in-flight jobs (up to {grace:g} s)")
        if signals > 1:
            os._exit(128 + signum)
        loop.call_soon_threadsafe(stop.set)
        loop.call_soon_threadsafe(worker._wake.set)

    crashed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(worker.run(stop=stop))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread's exit code
            log.exception("worker %s stopped on an error", worker.name)
            crashed.append(exc)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    thread = threading.Thread(target=serve, name="jobs-worker", daemon=True)
    thread.start()
    while thread.is_alive() and not signals:
        thread.join(timeout=0.5)
    thread.join(timeout=grace)
    if thread.is_alive():
        log.warning("worker %s: in-flight jobs did not finish in %g s; they stay Running and are "
                    "re-queued once their heartbeat is stale", worker.name, grace)
        logging.shutdown()
        os._exit(1)
    return 1 if crashed else 0


if __name__ == "__main__":
    main()
