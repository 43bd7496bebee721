"""The shared rate limiter on PostgreSQL: permit latency, the rate a binding limit lets through,
and what a limit that does not bind costs a run; each beside the old limiter
(``bench/baseline_shared_limiter.py``, a sliding log of rows under an advisory lock).

    uv run python -m bench.limiter_bench [--seconds 4] [--rate 80] [--run-seconds 15]

1. Permit latency: 1, 4 and 16 OS processes take permits of one key back to back for
   ``--seconds`` (limit 100,000/s: it never binds), 16 processes with a key each (what the
   key's row lock costs), and one process with 5 concurrent requests; p50/p99 of one
   ``acquire`` and the permits per second of all together.
2. A binding limit: the RapidAPI sandbox runs as a process with ``--per-second-limit``
   ``--rate``; 2 worker processes with 8 concurrent profile fetches each (``RapidApiClient``,
   the product's client) fetch for ``--run-seconds`` while 2 busy-loop processes keep both
   cores busy (in a session of their own, as another user's work; the sandbox, which stands
   for the provider's servers, too). The rate is the fetches answered 200 over the time
   between the sending of the first and of the last of them, as a fraction of the limit, and
   the same from 2 s on (past the start-up); the 429s are the sandbox's count.
3. A limit that does not bind: the same 2 x 8 workload, ``--requests`` fetches at a sandbox
   latency of ``--latency-ms`` (an answer takes time, as a real API's does), without a
   limiter and with each limiter at 10,000/s; the run's wall time beside the one without.

Everything runs in a fresh database (created and dropped here) and fresh processes; processes
start together at an agreed moment, after their imports. Writes ``bench/LIMITER_RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "LIMITER_RESULTS.md"
ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
UNBOUND = 100_000  # per second: a limit no run here reaches
UNBOUND_PLAN = 10_000  # the same for a RapidAPI plan (the most ``requestsPerSecond`` takes)
VARIANTS = {"new": "one statement (this change)", "old": "baseline: advisory lock + permit rows"}


# -- in a worker process ---------------------------------------------------------------
def _limiter(variant: str, url: str, key: str, rate: int) -> Any:
    if variant == "new":
        from core.http.shared_limiter import SharedWindowLimiter
    else:
        from bench.baseline_shared_limiter import SharedWindowLimiter  # type: ignore[assignment]
    return SharedWindowLimiter(url, key, [(rate, 1.0)], configured=True)


async def _wait_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def _permits(args: SimpleNamespace) -> dict[str, Any]:
    key = args.key if args.shared else f"{args.key}:{args.worker}"
    limiter = _limiter(args.variant, args.url, key, UNBOUND)
    await limiter.acquire()  # connections and rows made before the clock starts
    await _wait_until(args.start_at)
    latencies: list[float] = []
    end = time.monotonic() + args.seconds

    async def loop() -> None:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            await limiter.acquire()
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    return {"latencies_ms": latencies}


async def _fetches(args: SimpleNamespace) -> dict[str, Any]:
    from core.profiles.client import RapidApiClient
    from core.profiles.settings import RapidApiSettings

    rate = args.rate
    settings = RapidApiSettings(baseUrl=args.sandbox, requestsPerSecond=rate if args.variant == "new" else 0,
                                concurrency=args.concurrency, rateLimitMaxRetries=20,
                                rateLimitBackoffMs=50, rateLimitBackoffMaxMs=1000)
    answered: list[float] = []
    async with RapidApiClient(settings, limits_url=args.url if args.variant == "new" else None) as client:
        if args.variant == "old" and rate:
            client._pacer = _limiter("old", args.url, args.key, rate)
        await _wait_until(args.start_at)
        started = time.monotonic()
        end = started + args.seconds if args.seconds else None
        todo = iter(range(args.requests or 10**9))

        async def loop(lane: int) -> None:
            sent = 0.0

            async def on_send() -> None:
                nonlocal sent
                sent = time.time()

            for i in todo:
                if end is not None and time.monotonic() >= end:
                    return
                await client.fetch_profile(f"ACoAABench{args.worker}x{lane}x{i:06d}", on_send=on_send)
                answered.append(sent)

        await asyncio.gather(*(loop(lane) for lane in range(args.concurrency)))
        wall = time.monotonic() - started
    return {"answered": answered, "wall": wall, "calls": client.api_calls}


# -- the driver ------------------------------------------------------------------------
def _machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "unknown CPU")
    from importlib.metadata import version

    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, PostgreSQL on loopback, SQLAlchemy {version('sqlalchemy')}, "
            f"psycopg {version('psycopg')}, httpx {version('httpx')}")


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@contextmanager
def _database():
    name = f"limiter_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        from core.db.migrate import upgrade

        upgrade(url)
        yield url
    finally:
        from core.db.engine import dispose_engines

        dispose_engines()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _workers(kind: str, count: int, **options: Any) -> list[dict[str, Any]]:
    """``count`` worker processes of ``kind``, started together; their JSON results."""
    start_at = time.time() + 3.0 + 0.25 * count  # after every worker's imports
    procs = []
    for worker in range(count):
        job = {"seconds": 0, "requests": 0, "rate": 0, "sandbox": "", "shared": True, **options,
               "worker": worker, "start_at": start_at}
        procs.append(subprocess.Popen([sys.executable, "-m", "bench.limiter_bench", "--worker", kind,
                                       "--job", json.dumps(job)], cwd=ROOT, stdout=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"a {kind} worker failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _busy_cores(count: int):
    """``count`` processes that spin: every core busy with something else."""
    # A session of their own: the scheduler shares the CPU between sessions first, so they
    # compete with the benchmark's processes as another user's work would, not only with its own.
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                for _ in range(count)]
    try:
        yield
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


@contextmanager
def _sandbox(**knobs: Any):
    """The RapidAPI sandbox as a process of its own; yields its URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "sandbox", "rapidapi", "--port", str(port)]
    for name, value in knobs.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    # In a session of its own: it stands for the provider's servers, which the busy cores of this
    # machine do not slow down.
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/__sandbox/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _stats(url: str, reset: bool = False) -> dict[str, Any]:
    if reset:
        httpx.post(url + "/__sandbox/reset", timeout=5)
    return dict(httpx.get(url + "/__sandbox/stats", timeout=5).json())


def _latency_rows(url: str, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for processes, concurrency, shared in ((1, 1, True), (4, 1, True), (16, 1, True), (16, 1, False),
                                           (1, 5, True)):
        for variant in VARIANTS:
            results = _workers("permits", processes, variant=variant, url=url, seconds=seconds,
                               concurrency=concurrency, key=f"bench:{uuid.uuid4().hex[:8]}", shared=shared)
            latencies = [x for r in results for x in r["latencies_ms"]]
            rows.append({"processes": processes, "concurrency": concurrency, "variant": variant, "shared": shared,
                         "p50": _quantile(latencies, 0.5), "p99": _quantile(latencies, 0.99),
                         "rate": len(latencies) / seconds, "load": _load()})
            print(f"  {processes:>2} process(es) x {concurrency} {'one key' if shared else 'own keys'} {variant}: p50 {rows[-1]['p50']:.2f} ms, "
                  f"p99 {rows[-1]['p99']:.2f} ms, {rows[-1]['rate']:.0f} permits/s  (load {rows[-1]['load']})",
                  flush=True)
    return rows


def _binding_rows(url: str, rate: int, seconds: float) -> list[dict[str, Any]]:
    rows = []
    with _sandbox(per_second_limit=rate) as sandbox, _busy_cores(os.cpu_count() or 2):
        for variant in VARIANTS:
            _stats(sandbox, reset=True)
            results = _workers("fetches", 2, variant=variant, url=url, sandbox=sandbox, rate=rate,
                               seconds=seconds, concurrency=8, key=f"bench:{uuid.uuid4().hex[:8]}")
            stats = _stats(sandbox)
            answered = sorted(t for r in results for t in r["answered"])
            achieved = (len(answered) - 1) / (answered[-1] - answered[0])
            later = [t for t in answered if t >= answered[0] + 2.0]  # past the start-up
            steady = (len(later) - 1) / (later[-1] - later[0])
            rows.append({"variant": variant, "rate": achieved, "share": achieved / rate,
                         "steady": steady / rate,
                         "ok": stats["statuses"].get("200", 0), "limited": stats["statuses"].get("429", 0),
                         "peak": stats["max_requests_per_second"], "load": _load()})
            print(f"  {variant}: {achieved:.1f}/s = {achieved / rate:.3f} of {rate}/s ({steady / rate:.3f} after 2 s), "
                  f"{rows[-1]['limited']} x 429, busiest second {rows[-1]['peak']}  (load {rows[-1]['load']})",
                  flush=True)
    return rows


def _overhead_rows(url: str, requests: int, latency_ms: float) -> list[dict[str, Any]]:
    rows = []
    with _sandbox(latency_ms=latency_ms) as sandbox:
        for variant, rate in (("none", 0), ("new", UNBOUND_PLAN), ("old", UNBOUND_PLAN)):
            _stats(sandbox, reset=True)
            results = _workers("fetches", 2, variant="new" if variant == "none" else variant, url=url,
                               sandbox=sandbox, rate=rate, requests=requests // 2, concurrency=8,
                               key=f"bench:{uuid.uuid4().hex[:8]}")
            wall = max(r["wall"] for r in results)
            rows.append({"variant": variant, "wall": wall, "load": _load()})
            print(f"  {variant}: {requests} fetches in {wall:.2f} s  (load {rows[-1]['load']})", flush=True)
    return rows


def _report(args: argparse.Namespace, latency: list[dict[str, Any]], binding: list[dict[str, Any]],
            overhead: list[dict[str, Any]], took: float) -> str:
    lines = ["# Shared rate limiter benchmark", "",
             f"`uv run python -m bench.limiter_bench {' '.join(sys.argv[1:])}`".replace(" `", "`"),
             f"on {time.strftime('%Y-%m-%d %H:%M %Z')}, {_machine()}; the whole benchmark took {took:.0f} s.",
             "Load averages (1/5/15 min) are the machine's at the end of each row: it is shared with "
             "other developers' test runs, which the figures include.", "",
             "## Permit latency (no binding limit)", "",
             f"Permits taken back to back for {args.seconds:g} s by every process, of one key shared by "
             f"all or of a key each (limit {UNBOUND:,}/s); latency of one `acquire`, whose thread hop "
             "and outage guard (`core.db.outage.ride_out`) included.", "",
             "| processes x concurrent requests | limiter | p50 ms | p99 ms | permits/s, all together | load |",
             "|---|---|---:|---:|---:|---|"]
    for r in latency:
        keys = "one key" if r["shared"] else "a key each"
        lines.append(f"| {r['processes']} x {r['concurrency']}, {keys} | {VARIANTS[r['variant']]} | {r['p50']:.2f} | "
                     f"{r['p99']:.2f} | {r['rate']:,.0f} | {r['load']} |")
    lines += ["", f"## A binding limit of {args.rate}/s, both cores busy", "",
              f"RapidAPI sandbox process with `--per-second-limit {args.rate}` (it counts every arrival "
              "of the last second, 429s included); 2 worker processes x 8 concurrent fetches for "
              f"{args.run_seconds:g} s; {os.cpu_count()} busy-loop processes.", "",
              "| limiter | achieved rate /s | share of the limit | share after the first 2 s | 200s | 429s "
              "| busiest second | load |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in binding:
        lines.append(f"| {VARIANTS[r['variant']]} | {r['rate']:.1f} | {r['share']:.3f} | {r['steady']:.3f} | {r['ok']} | "
                     f"{r['limited']} | {r['peak']} | {r['load']} |")
    base = next(r["wall"] for r in overhead if r["variant"] == "none")
    lines += ["", "## What a limit that does not bind adds to a run", "",
              f"{args.requests} fetches by 2 worker processes x 8 concurrent, sandbox latency "
              f"{args.latency_ms:g} ms, no per-second limit at the sandbox; limiters at {UNBOUND_PLAN:,}/s.", "",
              "| limiter | wall s | added to the run |", "|---|---:|---:|"]
    names = {"none": "none", **VARIANTS}
    for r in overhead:
        added = "-" if r["variant"] == "none" else f"{100 * (r['wall'] / base - 1):+.1f} %"
        lines.append(f"| {names[r['variant']]} | {r['wall']:.2f} | {added} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="permit-latency phase, per row")
    parser.add_argument("--rate", type=int, default=80, help="the binding per-second limit")
    parser.add_argument("--run-seconds", type=float, default=15.0, help="binding-limit phase, per limiter")
    parser.add_argument("--requests", type=int, default=3200, help="fetches of the overhead phase")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="sandbox latency of the overhead phase")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", choices=["permits", "fetches"], help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one worker process: its job as JSON in, its results as JSON out
        run = _permits if args.worker == "permits" else _fetches
        print(json.dumps(asyncio.run(run(SimpleNamespace(**json.loads(args.job))))))
        return

    began = time.monotonic()
    with _database() as url:
        print(f"{_machine()}\npermit latency:", flush=True)
        latency = _latency_rows(url, args.seconds)
        print(f"binding limit {args.rate}/s, both cores busy:", flush=True)
        binding = _binding_rows(url, args.rate, args.run_seconds)
        print(f"a limit that does not bind, {args.requests} fetches:", flush=True)
        overhead = _overhead_rows(url, args.requests, args.latency_ms)
    report = _report(args, latency, binding, overhead, time.monotonic() - began)
    print("\n" + report)
    if not args.no_write:
        args.results.write_text(report)
        print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
