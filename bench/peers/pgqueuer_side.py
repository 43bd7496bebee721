"""pgqueuer's side of the job-queue benchmark. Runs in the peers' own environment:

    bench/.peers-venv/bin/python -m bench.peers.pgqueuer_side --dsn DSN --batch 10 --markers FILE
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import psycopg

from bench.peers.common import Markers, emit, measure, record, start_worker


async def _worker(dsn: str, batch: int) -> None:
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.models import Job
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    qm = QueueManager(Queries(PsycopgDriver(conn)))

    @qm.entrypoint("noop")
    async def noop(job: Job) -> None:
        record((job.payload or b"").decode())

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    await qm.run(batch_size=batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", nargs="?", default="measure")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--markers", default="")
    args = parser.parse_args()
    if args.command == "worker":
        asyncio.run(_worker(args.dsn, args.batch))
        return
    from pgqueuer.db import PsycopgDriver, SyncPsycopgDriver
    from pgqueuer.queries import Queries, SyncQueries

    async def install() -> None:
        async with await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as conn:
            queries = Queries(PsycopgDriver(conn))
            if not await queries.schema_is_installed():
                await queries.install()

    asyncio.run(install())
    conn = psycopg.connect(args.dsn, autocommit=True)
    queries = SyncQueries(SyncPsycopgDriver(conn))
    probe = psycopg.connect(args.dsn, autocommit=True)

    def remaining() -> int:
        return int(probe.execute("SELECT count(*) FROM pgqueuer").fetchone()[0])  # type: ignore[index]

    def clear() -> None:
        probe.execute("DELETE FROM pgqueuer")

    def start():  # type: ignore[no-untyped-def]
        return start_worker([sys.executable, "-m", "bench.peers.pgqueuer_side", "worker", "--dsn", args.dsn,
                             "--batch", str(args.batch)], {"BENCH_MARKERS": args.markers})

    clear()
    result = measure(
        enqueue_one=lambda token: queries.enqueue("noop", token.encode()),
        enqueue_many=lambda tokens: queries.enqueue(["noop"] * len(tokens), [t.encode() for t in tokens],
                                                    [0] * len(tokens)),
        remaining=remaining, clear=clear, start=start, markers=Markers(args.markers),
        label=f"pgqueuer-b{args.batch}")
    emit(result | {"side": "pgqueuer", "setting": f"batch {args.batch}"})


if __name__ == "__main__":
    main()
