"""procrastinate's side of the job-queue benchmark. Runs in the peers' own environment:

    bench/.peers-venv/bin/python -m bench.peers.procrastinate_side --dsn DSN --concurrency 1 --markers FILE
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg

from bench.peers.common import Markers, emit, measure, record, start_worker


def make_app(connector: object) -> object:
    import procrastinate

    app = procrastinate.App(connector=connector)  # type: ignore[arg-type]

    @app.task(name="noop")
    async def noop(token: str) -> None:
        record(token)

    return app


async def _worker(dsn: str, concurrency: int) -> None:
    import procrastinate

    app = make_app(procrastinate.PsycopgConnector(conninfo=dsn))
    async with app.open_async():  # type: ignore[attr-defined]
        await app.run_worker_async(concurrency=concurrency)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", nargs="?", default="measure")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--markers", default="")
    args = parser.parse_args()
    if args.command == "worker":
        asyncio.run(_worker(args.dsn, args.concurrency))
        return
    import procrastinate

    app = make_app(procrastinate.SyncPsycopgConnector(conninfo=args.dsn))
    probe = psycopg.connect(args.dsn, autocommit=True)
    installed = probe.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]  # type: ignore[index]
    with app.open():  # type: ignore[attr-defined]
        if not installed:
            app.schema_manager.apply_schema()  # type: ignore[attr-defined]
        task = app.tasks["noop"]  # type: ignore[attr-defined]

        def remaining() -> int:
            return int(probe.execute(  # type: ignore[index]
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')").fetchone()[0])

        def clear() -> None:
            probe.execute("TRUNCATE procrastinate_jobs, procrastinate_events CASCADE")

        def start():  # type: ignore[no-untyped-def]
            return start_worker([sys.executable, "-m", "bench.peers.procrastinate_side", "worker", "--dsn",
                                 args.dsn, "--concurrency", str(args.concurrency)], {"BENCH_MARKERS": args.markers})

        clear()
        result = measure(
            enqueue_one=lambda token: task.defer(token=token),
            enqueue_many=lambda tokens: task.batch_defer(*({"token": t} for t in tokens)),
            remaining=remaining, clear=clear, start=start, markers=Markers(args.markers),
            label=f"procrastinate-c{args.concurrency}")
        done = probe.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()[0]  # type: ignore[index]
    emit(result | {"side": "procrastinate", "setting": f"concurrency {args.concurrency}", "succeeded": done})


if __name__ == "__main__":
    main()
