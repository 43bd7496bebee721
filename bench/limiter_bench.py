"""The shared rate limiter on PostgreSQL: permit latency, the rate a binding limit lets through,
and what a limit that does not bind costs a run; each beside the old limiter
(``bench/baseline_shared_limiter.py``, a sliding log of rows under an advisory lock).

    UV_NO_SYNC=1 .venv/bin/python -m bench.limiter_bench [--seconds 4] [--rate 80] [--run-seconds 15]
        [--requests 3200] [--latency-ms 100] [--repeats 3]

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
   limiter and with each limiter at 10,000/s, ``--repeats`` times each, interleaved; the median
   run's wall time beside the one without.

Everything runs in a fresh database (created and dropped here) and fresh processes; processes
start together at an agreed moment, once every one has said it is set up (imports,
connections). Writes ``bench/LIMITER_RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from bench.scratch import scratch_database
from core.http.limiter import MARGIN_CAP, MARGIN_SHARE, window_span

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "LIMITER_RESULTS.md"
UNBOUND = 100_000  # per second: a limit no run here reaches
UNBOUND_PLAN = 10_000  # the same for a RapidAPI plan (the most ``requestsPerSecond`` takes)
STALE_MS = 1000 * (window_span(1.0) - 1.0) / 2  # Permit.late on a 1-s window: half its margin
VARIANTS = {"new": "one statement (this change)", "old": "baseline: advisory lock + permit rows"}


# -- in a worker process ---------------------------------------------------------------
def _limiter(variant: str, url: str, key: str, rate: int) -> Any:
    if variant == "new":
        from core.http.shared_limiter import SharedWindowLimiter
    else:
        from bench.baseline_shared_limiter import SharedWindowLimiter  # type: ignore[assignment]
    return SharedWindowLimiter(url, key, [(rate, 1.0)], configured=True)


async def _ready_then_wait() -> float:
    """Tell the driver this worker is set up (imports, connections), read the agreed start
    moment from it, and sleep until then; returns how late this worker was for it."""
    print("ready", flush=True)
    moment = float(await asyncio.to_thread(sys.stdin.readline))
    await asyncio.sleep(max(0.0, moment - time.time()))
    return max(0.0, time.time() - moment)


class _Watch:
    """What the new limiter did in this process, for the diagnosis (the bench wraps a few of its
    functions; ``core`` is not changed; each wrapper costs microseconds): the time each request
    spent taking its permit (``ProviderClient._acquire``) and renewing it at write
    (``Permit.keep_fresh``); how late each permit was for its booked moment when it was made
    (``Permit``, just before ``permit()`` gives a late one back) and when the request's headers
    were about to be written; the moments given back (``SharedBudget.cancel``), the permits
    renewed at write; the statements and their time on the connection (``_pg``)."""

    def __init__(self) -> None:
        self.cancels = 0
        self.renewed = 0
        self.acquire_ms: list[float] = []
        self.keep_fresh_ms: list[float] = []
        self.late_at_permit_ms: list[float] = []
        self.slept_at_permit: list[bool] = []
        self.late_at_write_ms: list[float] = []
        self.statements = 0
        self.statement_ms = 0.0

    def install(self) -> None:
        from core.http import client as hc
        from core.http import shared_limiter as sl

        acquire, cancel, keep_fresh, init, pg = (hc.ProviderClient._acquire, sl.SharedBudget.cancel,
                                                 sl.Permit.keep_fresh, sl.Permit.__init__, sl._pg)
        watch = self

        async def timed_acquire(client: Any, pacers: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await acquire(client, pacers)
            finally:
                watch.acquire_ms.append((time.perf_counter() - t0) * 1000)

        async def counted_cancel(budget: Any, slot: float) -> None:
            watch.cancels += 1
            await cancel(budget, slot)

        def noted_init(permit: Any, *a: Any, **k: Any) -> None:
            init(permit, *a, **k)
            watch.late_at_permit_ms.append((time.monotonic() - permit.due) * 1000)
            watch.slept_at_permit.append(permit.waited > 0)

        async def timed_keep_fresh(permit: Any) -> float:
            t0 = time.perf_counter()
            watch.late_at_write_ms.append((time.monotonic() - permit.due) * 1000)
            renewed = permit.renewed
            waited = await keep_fresh(permit)
            watch.renewed += permit.renewed and not renewed
            watch.keep_fresh_ms.append((time.perf_counter() - t0) * 1000)
            return waited

        async def timed_pg(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await pg(*a, **k)
            finally:
                watch.statements += 1
                watch.statement_ms += (time.perf_counter() - t0) * 1000

        hc.ProviderClient._acquire = timed_acquire  # type: ignore[method-assign]
        sl.SharedBudget.cancel = counted_cancel  # type: ignore[method-assign]
        sl.Permit.__init__ = noted_init  # type: ignore[method-assign]
        sl.Permit.keep_fresh = timed_keep_fresh  # type: ignore[method-assign]
        sl._pg = timed_pg

    def backend_cpu(self) -> float | None:
        """CPU seconds of this process's limiter connection's PostgreSQL backend (same machine)."""
        from core.http import shared_limiter as sl

        total = 0.0
        for _, conn in list(sl._connections.values()):
            try:
                fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def result(self) -> dict[str, Any]:
        return {"cancels": self.cancels, "renewed": self.renewed, "acquire_ms": self.acquire_ms,
                "keep_fresh_ms": self.keep_fresh_ms, "late_at_permit_ms": self.late_at_permit_ms,
                "slept_at_permit": self.slept_at_permit, "late_at_write_ms": self.late_at_write_ms,
                "statements": self.statements, "statement_ms": self.statement_ms}


async def _permits(args: SimpleNamespace) -> dict[str, Any]:
    key = args.key if args.shared else f"{args.key}:{args.worker}"
    limiter = _limiter(args.variant, args.url, key, UNBOUND)
    await limiter.acquire()  # connections and rows made before the clock starts
    late = await _ready_then_wait()
    latencies: list[float] = []
    end = time.monotonic() + args.seconds

    async def loop() -> None:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            await limiter.acquire()
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    return {"latencies_ms": latencies, "late": late}


async def _fetches(args: SimpleNamespace) -> dict[str, Any]:
    from core.profiles.client import RapidApiClient
    from core.profiles.settings import RapidApiSettings

    rate = args.rate
    watch = _Watch()
    if args.variant == "new" and rate:
        watch.install()
    settings = RapidApiSettings(baseUrl=args.sandbox, requestsPerSecond=rate if args.variant == "new" else 0,
                                concurrency=args.concurrency, rateLimitMaxRetries=20,
                                rateLimitBackoffMs=50, rateLimitBackoffMaxMs=1000)
    answered: list[float] = []
    sends: list[float] = []  # every attempt's, 429s included
    async with RapidApiClient(settings, limits_url=args.url if args.variant == "new" else None) as client:
        if args.variant == "old" and rate:
            client._pacer = _limiter("old", args.url, args.key, rate)
        late = await _ready_then_wait()
        started, usage = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = usage.ru_utime + usage.ru_stime
        end = started + args.seconds if args.seconds else None
        todo = iter(range(args.requests or 10**9))

        async def loop(lane: int) -> None:
            sent = 0.0

            async def on_send() -> None:
                nonlocal sent
                sent = time.time()
                sends.append(sent)

            for i in todo:
                if end is not None and time.monotonic() >= end:
                    return
                await client.fetch_profile(f"ACoAABench{args.worker}x{lane}x{i:06d}", on_send=on_send)
                answered.append(sent)

        await asyncio.gather(*(loop(lane) for lane in range(args.concurrency)))
        wall = time.monotonic() - started
        backend = watch.backend_cpu() if watch.acquire_ms else None
        usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"answered": answered, "sends": sends, "wall": wall, "calls": client.api_calls, "late": late,
            "cpu": usage.ru_utime + usage.ru_stime - cpu_before, "backend_cpu": backend, **watch.result()}


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


def _workers(kind: str, count: int, **options: Any) -> list[dict[str, Any]]:
    """``count`` worker processes of ``kind``, started together once every one of them is set
    up (it says so on stdout; the start moment goes to its stdin); their JSON results."""
    procs = []
    for worker in range(count):
        job = {"seconds": 0, "requests": 0, "rate": 0, "sandbox": "", "shared": True, **options,
               "worker": worker}
        procs.append(subprocess.Popen([sys.executable, "-m", "bench.limiter_bench", "--worker", kind,
                                       "--job", json.dumps(job)], cwd=ROOT, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.wait(timeout=60)
            raise RuntimeError(f"a {kind} worker failed before it was ready ({proc.returncode})")
    start_at = time.time() + 0.3  # every worker hears it well before
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at!r}\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"a {kind} worker failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def _busiest_second(times: list[float]) -> int:
    """The most of ``times`` within any 1.0 s (half-open), as the sandbox counts arrivals."""
    ordered, most, first = sorted(times), 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def _diagnosis(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The watch's figures of some fetch workers, together (see ``_Watch``)."""
    def every(name: str) -> list[Any]:
        return [x for r in results for x in r.get(name, [])]

    fetches = sum(len(r["answered"]) for r in results) or 1
    at_permit, slept = every("late_at_permit_ms"), every("slept_at_permit")
    at_write, acquire, fresh = every("late_at_write_ms"), every("acquire_ms"), every("keep_fresh_ms")
    backend = [r.get("backend_cpu") for r in results]
    return {
        "attempts": sum(r["calls"] for r in results), "fetches": fetches,
        "client_busiest": _busiest_second(every("sends")),
        "cpu_ms_per_fetch": 1000 * sum(r["cpu"] for r in results) / fetches,
        "backend_ms_per_fetch": (1000 * sum(backend) / fetches  # type: ignore[arg-type]
                                 if backend and None not in backend else None),
        "watched": bool(acquire),
        "cancels": sum(r.get("cancels", 0) for r in results),
        "renewed": sum(r.get("renewed", 0) for r in results),
        "permit_ms_per_fetch": (sum(acquire) + sum(fresh)) / fetches,
        "acquire_p50": _quantile(acquire, 0.5) if acquire else None,
        "acquire_p99": _quantile(acquire, 0.99) if acquire else None,
        "acquire_max": max(acquire, default=None),
        "statements_per_fetch": sum(r.get("statements", 0) for r in results) / fetches,
        "statement_ms": (sum(r.get("statement_ms", 0.0) for r in results)
                         / max(1, sum(r.get("statements", 0) for r in results))),
        "permits": len(at_permit),
        "late_at_permit_slept": sum(1 for x, z in zip(at_permit, slept, strict=True) if z and x > STALE_MS),
        "late_at_permit_unslept": sum(1 for x, z in zip(at_permit, slept, strict=True) if not z and x > STALE_MS),
        "late_at_permit_p99": _quantile(at_permit, 0.99) if at_permit else None,
        "late_given_back_ms": sorted(x for x in at_permit if x > STALE_MS),
        "late_at_write_p50": _quantile(at_write, 0.5) if at_write else None,
        "late_at_write_p99": _quantile(at_write, 0.99) if at_write else None,
        "late_at_write_over": sum(1 for x in at_write if x > STALE_MS),
    }


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
                         "rate": len(latencies) / seconds, "load": _load(),
                         "start_late": max(r["late"] for r in results)})
            print(f"  {processes:>2} process(es) x {concurrency} {'one key' if shared else 'own keys'} {variant}: p50 {rows[-1]['p50']:.2f} ms, "
                  f"p99 {rows[-1]['p99']:.2f} ms, {rows[-1]['rate']:.0f} permits/s, latest start "
                  f"{1000 * rows[-1]['start_late']:.0f} ms  (load {rows[-1]['load']})",
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
                         "steady": steady / rate, "seconds": answered[-1] - answered[0],
                         "ok": stats["statuses"].get("200", 0), "limited": stats["statuses"].get("429", 0),
                         "peak": stats["max_requests_per_second"], "load": _load(),
                         "start_late": max(r["late"] for r in results), **_diagnosis(results)})
            r = rows[-1]
            print(f"  {variant}: {achieved:.1f}/s = {achieved / rate:.3f} of {rate}/s ({steady / rate:.3f} after 2 s), "
                  f"{r['limited']} x 429, busiest second {r['peak']} (client side {r['client_busiest']})  "
                  f"(load {r['load']})\n    {json.dumps({k: v for k, v in r.items() if k != 'late_given_back_ms'})}\n"
                  f"    late permits given back, ms: {[round(x) for x in r['late_given_back_ms']]}", flush=True)
    return rows


def _overhead_rows(url: str, requests: int, latency_ms: float, repeats: int) -> list[dict[str, Any]]:
    """Each variant ``repeats`` times, interleaved (none, new, old, none, ...), so that a change
    of the machine's load meanwhile touches all alike; the median wall time of each."""
    walls: dict[str, list[float]] = {"none": [], "new": [], "old": []}
    every: dict[str, list[dict[str, Any]]] = {"none": [], "new": [], "old": []}
    busy: dict[str, list[float]] = {"none": [], "new": [], "old": []}
    with _sandbox(latency_ms=latency_ms) as sandbox:
        for _ in range(repeats):
            for variant, rate in (("none", 0), ("new", UNBOUND_PLAN), ("old", UNBOUND_PLAN)):
                _stats(sandbox, reset=True)
                before = _machine_busy()
                results = _workers("fetches", 2, variant="new" if variant == "none" else variant, url=url,
                                   sandbox=sandbox, rate=rate, requests=requests // 2, concurrency=8,
                                   key=f"bench:{uuid.uuid4().hex[:8]}")
                after = _machine_busy()
                busy[variant].append((after[0] - before[0]) / max(1, after[1] - before[1]))
                walls[variant].append(max(r["wall"] for r in results))
                every[variant] += results
                d = _diagnosis(results)
                print(f"  {variant}: {requests} fetches in {walls[variant][-1]:.2f} s, machine busy "
                      f"{100 * busy[variant][-1]:.0f} %  (load {_load()})\n    "
                      f"{json.dumps({k: v for k, v in d.items() if k != 'late_given_back_ms'})}", flush=True)
    return [{"variant": v, "wall": sorted(w)[len(w) // 2], "walls": w, "load": _load(),
             "busy": sum(busy[v]) / len(busy[v]), **_diagnosis(every[v])} for v, w in walls.items()]


def _report(args: argparse.Namespace, latency: list[dict[str, Any]], binding: list[dict[str, Any]],
            overhead: list[dict[str, Any]], took: float, load_before: str) -> str:
    command = shlex.join(["UV_NO_SYNC=1", ".venv/bin/python", "-m", "bench.limiter_bench", *sys.argv[1:]])
    lines = ["# Shared rate limiter benchmark", "",
             f"`{command}`",
             f"on {time.strftime('%Y-%m-%d %H:%M %Z')}, {_machine()}; the whole benchmark took {took:.0f} s; "
             f"load average {load_before} before it, {_load()} after.",
             "Load averages (1/5/15 min) are the machine's at the end of each row: it is shared with "
             "other developers' test runs, which the figures include.", "",
             "## Permit latency (no binding limit)", "",
             f"Permits taken back to back for {args.seconds:g} s by every process, of one key shared by "
             f"all or of a key each (limit {UNBOUND:,}/s); latency of one `acquire` as its caller sees it "
             "(new: one statement on the event loop's connection inside the outage guard "
             "`core.db.outage.ride_out`; old: a thread hop and a transaction). Every process is a "
             "Python process spinning on permits: 16 of them share 2 cores.", "",
             "| processes x concurrent requests | limiter | p50 ms | p99 ms | permits/s, all together "
             "| latest worker start ms | load |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in latency:
        keys = "one key" if r["shared"] else "a key each"
        lines.append(f"| {r['processes']} x {r['concurrency']}, {keys} | {VARIANTS[r['variant']]} | {r['p50']:.2f} | "
                     f"{r['p99']:.2f} | {r['rate']:,.0f} | {1000 * r['start_late']:.0f} | {r['load']} |")
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
    ceiling = 1 / (1 + min(MARGIN_CAP, MARGIN_SHARE * 1.0))

    def ms(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines += ["", f"The new limiter's own ceiling on a 1-s window is 1 / (1 + margin) = {ceiling:.3f} of the limit "
              "(`core.http.limiter.window_span`: 8 permits every 0.104 s at 80/s). What the new limiter did "
              "(the bench wraps `ProviderClient._acquire`, `Permit`, `Permit.keep_fresh`, `SharedBudget.cancel` "
              "and `_pg`; `core` is unchanged): moments given back unused, of them renewed at write; permits "
              f"late for their moment by more than {STALE_MS:g} ms (`Permit.late`) when made, after a sleep or "
              "not; lateness at write; the busiest 1.0 s of the clients' own sending times (every attempt), "
              "beside the sandbox's count of arrivals.", "",
              "| limiter | HTTP attempts | moments given back | renewed at write | late when made, after a sleep "
              "| late when made, no sleep | late at write p50 / p99 ms | busiest second: sent / arrived "
              "| workers' start, latest ms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in binding:
        if r["watched"]:
            lines.append(f"| {VARIANTS[r['variant']]} | {r['attempts']} | {r['cancels']} | {r['renewed']} | "
                         f"{r['late_at_permit_slept']} | {r['late_at_permit_unslept']} | "
                         f"{ms(r['late_at_write_p50'])} / {ms(r['late_at_write_p99'])} | "
                         f"{r['client_busiest']} / {r['peak']} | {1000 * r['start_late']:.0f} |")
        else:
            lines.append(f"| {VARIANTS[r['variant']]} | {r['attempts']} | - | - | - | - | - | "
                         f"{r['client_busiest']} / {r['peak']} | {1000 * r['start_late']:.0f} |")
    for r in binding:
        if r["late_given_back_ms"]:
            lines += ["", f"Lateness of the new limiter's permits given back when made, ms: "
                      f"{', '.join(f'{x:.0f}' for x in r['late_given_back_ms'])}."]
    base = next(r["wall"] for r in overhead if r["variant"] == "none")
    lines += ["", "## What a limit that does not bind adds to a run", "",
              f"{args.requests} fetches by 2 worker processes x 8 concurrent, sandbox latency "
              f"{args.latency_ms:g} ms, no per-second limit at the sandbox; limiters at {UNBOUND_PLAN:,}/s; "
              f"{args.repeats} runs of each, interleaved (none, new, old, none, ...): the median, and every run.", "",
              "| limiter | median wall s | added to the run (medians) | every run, s |", "|---|---:|---:|---|"]
    names = {"none": "none", **VARIANTS}
    for r in overhead:
        added = "-" if r["variant"] == "none" else f"{100 * (r['wall'] / base - 1):+.1f} %"
        lines.append(f"| {names[r['variant']]} | {r['wall']:.2f} | {added} | {', '.join(f'{w:.2f}' for w in r['walls'])} |")
    lines += ["", "Where the time goes (all runs of each together; CPU of the 2 worker processes from their "
              "start moment, of the new limiter's PostgreSQL backends; the machine's busy share over each run, "
              "other users' work included):", "",
              "| limiter | machine busy | workers' CPU ms / fetch | limiter backend CPU ms / fetch "
              "| ms / fetch in permits (incl. renewals) | acquire p50 / p99 / max ms | statements / fetch "
              "| ms / statement | moments given back | renewed at write |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in overhead:
        if r["watched"]:
            lines.append(f"| {names[r['variant']]} | {100 * r['busy']:.0f} % | {r['cpu_ms_per_fetch']:.2f} | "
                         f"{ms(r['backend_ms_per_fetch'], 2)} | {r['permit_ms_per_fetch']:.2f} | "
                         f"{ms(r['acquire_p50'], 2)} / {ms(r['acquire_p99'])} / {ms(r['acquire_max'])} | "
                         f"{r['statements_per_fetch']:.2f} | {r['statement_ms']:.2f} | {r['cancels']} | {r['renewed']} |")
        else:
            lines.append(f"| {names[r['variant']]} | {100 * r['busy']:.0f} % | {r['cpu_ms_per_fetch']:.2f} | - | - | - "
                         "| - | - | - | - |")
    lines += _goals(latency, binding, overhead, base)
    return "\n".join(lines) + "\n"


def _goals(latency: list[dict[str, Any]], binding: list[dict[str, Any]], overhead: list[dict[str, Any]],
           base: float) -> list[str]:
    """The issue's goals beside this run's figures of the new limiter (and the old one's)."""
    def row(variant: str, processes: int, concurrency: int, shared: bool) -> dict[str, Any]:
        return next(r for r in latency if (r["variant"], r["processes"], r["concurrency"], r["shared"])
                    == (variant, processes, concurrency, shared))

    new_b = next(r for r in binding if r["variant"] == "new")
    new_o = next(r for r in overhead if r["variant"] == "new")
    added = 100 * (new_o["wall"] / base - 1)
    p50s = ", ".join(f"{p} x {c}{'' if s else ' (own keys)'}: {row('new', p, c, s)['p50']:.2f} ms"
                     for p, c, s in ((1, 1, True), (4, 1, True), (16, 1, True), (16, 1, False), (1, 5, True)))
    one, own = row("new", 16, 1, True), row("new", 16, 1, False)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    return ["", "## The issue's goals (new limiter, this run)", "",
            f"* One permit costs at most a few ms: p50 {p50s}.",
            f"* Unrelated processes are not serialized: 16 processes on their own keys {own['rate']:,.0f} "
            f"permits/s (p50 {own['p50']:.2f} ms) beside 16 on one key {one['rate']:,.0f}/s "
            f"(p50 {one['p50']:.2f} ms).",
            f"* Binding limit: combined rate >= 0.95 x the limit: {new_b['share']:.3f} "
            f"({new_b['steady']:.3f} after 2 s): {verdict(new_b['share'] >= 0.95)}; 0 x 429: "
            f"{new_b['limited']} x 429: {verdict(new_b['limited'] == 0)}.",
            f"* A limit that does not bind adds < 2 % to a run: {added:+.1f} % (medians): {verdict(added < 2.0)}."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="permit-latency phase, per row")
    parser.add_argument("--rate", type=int, default=80, help="the binding per-second limit")
    parser.add_argument("--run-seconds", type=float, default=15.0, help="binding-limit phase, per limiter")
    parser.add_argument("--requests", type=int, default=3200, help="fetches of the overhead phase")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="sandbox latency of the overhead phase")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant in the overhead phase")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", choices=["permits", "fetches"], help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one worker process: its job as JSON in, its results as JSON out
        run = _permits if args.worker == "permits" else _fetches
        print(json.dumps(asyncio.run(run(SimpleNamespace(**json.loads(args.job))))))
        return

    began, load_before = time.monotonic(), _load()
    with scratch_database("limiter_bench") as url:
        print(f"{_machine()}\npermit latency:", flush=True)
        latency = _latency_rows(url, args.seconds)
        print(f"binding limit {args.rate}/s, both cores busy:", flush=True)
        binding = _binding_rows(url, args.rate, args.run_seconds)
        print(f"a limit that does not bind, {args.requests} fetches:", flush=True)
        overhead = _overhead_rows(url, args.requests, args.latency_ms, args.repeats)
    report = _report(args, latency, binding, overhead, time.monotonic() - began, load_before)
    print("\n" + report)
    if not args.no_write:
        args.results.write_text(report)
        print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
