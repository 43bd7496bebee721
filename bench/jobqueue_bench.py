"""Job queue: enqueue-to-start latency and jobs/s for no-op jobs, beside direct flow runs.

    uv run python -m bench.jobqueue_bench [--jobs 1000] [--parallel 10]

Runs on a fresh PostgreSQL database and a temporary Prefect API (test harness).
1. queue, burst: N no-op jobs committed in one transaction, one in-process jobs worker
   (LISTEN/NOTIFY) runs them; jobs/s from first commit to last completion.
2. queue, trickle: 50 jobs committed one at a time, 100 ms apart, into an idle worker:
   enqueue-to-start latency (jobs.started_at - jobs.created_at, and to the handler).
3. baseline: the same no-op work as N direct Prefect flow runs (async flow calls,
   ``parallel`` at a time), the way a team would run them without the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

import psycopg
from prefect import flow
from pydantic import BaseModel
from sqlalchemy import select

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
STARTS: dict[str, float] = {}


class NoopJob(BaseModel):
    token: str


def _register() -> None:
    from core.jobqueue import JobProgress, job_handler

    @job_handler(NoopJob)
    async def noop(job: NoopJob, progress: JobProgress) -> None:
        STARTS[job.token] = time.time()


@flow(name="noop-direct")
async def noop_direct(token: str) -> None:
    STARTS[token] = time.time()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _queue(n: int, trickle: int) -> dict[str, object]:
    from core.db import session_scope
    from core.jobqueue import start_job
    from core.jobqueue.models import Job
    from core.settings import get_settings
    from deployments.jobs_worker import JobsWorker

    url = get_settings().database_url
    worker = JobsWorker(get_settings(), name="bench")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    await asyncio.sleep(2)  # worker start-up (limits, recovery) is not part of the figures

    def done() -> int:
        with session_scope(url) as session:
            return sum(1 for s in session.execute(select(Job.status)).scalars() if s == "Completed")

    t0 = time.time()
    with session_scope(url) as session:
        commits = {start_job(session, NoopJob(token=f"b{i}")): f"b{i}" for i in range(n)}
    committed = time.time()
    while done() < n:
        await asyncio.sleep(0.2)
    burst_seconds = time.time() - t0
    commit_times: dict[str, float] = {}
    for i in range(trickle):
        with session_scope(url) as session:
            start_job(session, NoopJob(token=f"t{i}"))
        commit_times[f"t{i}"] = time.time()
        await asyncio.sleep(0.1)
    while done() < n + trickle:
        await asyncio.sleep(0.1)
    stop.set()
    await task
    with session_scope(url) as session:
        rows = session.execute(select(Job.job_data, Job.created_at, Job.started_at)).all()
    claim_latency = [(r.started_at - r.created_at).total_seconds() * 1000 for r in rows
                     if r.job_data["token"].startswith("t")]
    handler_latency = [(STARTS[t] - c) * 1000 for t, c in commit_times.items()]
    return {"burst_seconds": burst_seconds, "enqueue_seconds": committed - t0, "jobs": len(commits),
            "claim_ms": claim_latency, "handler_ms": handler_latency}


async def _direct(n: int, parallel: int, trickle: int) -> dict[str, object]:
    gate = asyncio.Semaphore(parallel)

    errors: list[str] = []

    async def one(token: str) -> None:
        async with gate:
            try:
                await noop_direct(token=token)
            except Exception as exc:  # noqa: BLE001 - the API refusing runs is part of the result
                errors.append(type(exc).__name__)

    t0 = time.time()
    await asyncio.gather(*(one(f"d{i}") for i in range(n)))
    seconds = time.time() - t0
    latency = []
    for i in range(trickle):
        asked = time.time()
        await noop_direct(token=f"dt{i}")
        latency.append((STARTS[f"dt{i}"] - asked) * 1000)
    return {"seconds": seconds, "latency_ms": latency, "errors": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--trickle", type=int, default=50)
    args = parser.parse_args()
    name = f"jobpipes_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update({
        "DATABASE_URL": ADMIN.rsplit("/", 1)[0] + f"/{name}", "JOBS_MODULES": "core.jobqueue.examples",
        "JOBS_MAX_PARALLEL": str(args.parallel), "JOBS_DEFAULT_CONCURRENCY": str(args.parallel),
        "JOBS_POLL_INTERVAL_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
    })
    from prefect.testing.utilities import prefect_test_harness

    from core.db.engine import dispose_engines
    from core.db.migrate import upgrade

    _register()
    try:
        upgrade(os.environ["DATABASE_URL"])
        with prefect_test_harness(server_startup_timeout=60):
            queue = asyncio.run(_queue(args.jobs, args.trickle))
            direct = asyncio.run(_direct(args.jobs, args.parallel, args.trickle))
    finally:
        dispose_engines()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = args.jobs
    qb, dl = queue["burst_seconds"], direct["latency_ms"]
    print(f"{n} no-op jobs, {args.parallel} in parallel, PostgreSQL 15, Prefect 3.8.8 temporary API, 2 cores\n")
    print("| variant | wall time (s) | jobs/s | enqueue-to-start p50 / p95 (ms) |\n|---|---|---|---|")
    print(f"| job queue (start_job + jobs worker; each job a task run) | {qb:.1f} | {n / qb:.1f} | "
          f"{statistics.median(queue['handler_ms']):.0f} / {_pct(queue['handler_ms'], 0.95):.0f} "
          f"(row claimed: {statistics.median(queue['claim_ms']):.0f} / {_pct(queue['claim_ms'], 0.95):.0f}) |")
    print(f"| baseline: direct async flow runs | {direct['seconds']:.1f} | {n / direct['seconds']:.1f} | "
          f"{statistics.median(dl):.0f} / {_pct(dl, 0.95):.0f} |")
    print(f"\nenqueue of {n} jobs in one transaction: {queue['enqueue_seconds'] * 1000:.0f} ms")
    if direct["errors"]:
        print(f"baseline: {direct['errors']} of {n} direct flow runs were refused by the API (HTTP 503)")


if __name__ == "__main__":
    main()
