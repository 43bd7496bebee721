"""This project's side of the job-queue benchmark (the product's environment):

    uv run python -m bench.peers.jobpipes_side --dsn DSN --mode batch --parallel 100 --batch 50 --markers FILE

Needs PREFECT_API_URL (a running Prefect server; ``bench.jobqueue_bench`` starts one) and a
database migrated to head. The worker is ``python -m deployments.worker.jobs_worker``, one process.
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg

from bench.peers.common import Markers, emit, measure, rss_mb, start_worker
from bench.peers.jobpipes_jobs import NoopJob
from core.db import session_scope
from core.jobqueue import start_job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--mode", choices=["job", "batch"], default="job")
    parser.add_argument("--parallel", type=int, default=10, help="jobsWorker.maxParallel (= the type's limit)")
    parser.add_argument("--batch", type=int, default=100, help="jobsWorker.batchSize (batch mode)")
    parser.add_argument("--markers", required=True)
    args = parser.parse_args()
    url = args.dsn
    probe = psycopg.connect(url, autocommit=True)

    def enqueue_one(token: str) -> None:
        with session_scope(url) as session:  # the application's own transaction, one job
            start_job(session, NoopJob(token=token))

    def enqueue_many(tokens: list[str]) -> None:
        with session_scope(url) as session:
            for token in tokens:
                start_job(session, NoopJob(token=token))

    def remaining() -> int:
        return int(probe.execute(  # type: ignore[index]
            "SELECT count(*) FROM jobs WHERE status IN ('Pending', 'Running')").fetchone()[0])

    def clear() -> None:
        probe.execute("DELETE FROM jobs")

    label = f"jobpipes-{args.mode}-p{args.parallel}" + (f"-b{args.batch}" if args.mode == "batch" else "")
    env = {"DATABASE_URL": url, "JOBS_MODULES": "bench.peers.jobpipes_jobs", "BENCH_MARKERS": args.markers,
           "JOBS_MODES": f"NoopJob={args.mode}", "JOBS_MAX_PARALLEL": str(args.parallel),
           "JOBS_DEFAULT_CONCURRENCY": str(args.parallel), "JOBS_BATCH_SIZE": str(args.batch)}

    def start():  # type: ignore[no-untyped-def]
        return start_worker([sys.executable, "-m", "deployments.worker.jobs_worker", "--name", label], env)

    clear()
    result = measure(enqueue_one=enqueue_one, enqueue_many=enqueue_many, remaining=remaining, clear=clear,
                     start=start, markers=Markers(args.markers), label=label)
    statuses = dict(probe.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())  # type: ignore[arg-type]
    server = os.environ.get("BENCH_PREFECT_PID")
    setting = f"per-job, maxParallel {args.parallel}" if args.mode == "job" else \
        f"batch {args.batch}, maxParallel {args.parallel}"
    emit(result | {"side": "jobpipes", "setting": setting, "statuses": statuses,
                   "server_rss_mb": rss_mb(int(server)) if server else {}})


if __name__ == "__main__":
    main()
