"""Benchmark: ``profile_fetcher`` (the real flow) beside a plain asyncio baseline (and a naive
one-task-per-entry Prefect flow), on N PENDING entries against the RapidAPI sandbox.

    uv run python -m bench.profile_fetcher_bench [--entries 1000] [--latency-ms 0 50]
        [--batch-size 10 100] [--db sqlite|postgres] [--concurrency 10]
        [--naive-entries 200] [--naive-batch-size 100] [--repeat 1]
        [--prefect-logging-level INFO] [--no-write]

Method:
- the sandbox runs in its own process (``python -m sandbox rapidapi``), one per latency;
- every variant runs in a fresh subprocess (so its peak RSS is its own) on a fresh
  database (SQLite file in a temp dir, or a PostgreSQL database created and dropped) and a
  fresh local object folder, configured through the product's environment variables;
- Prefect variants use Prefect's ephemeral API with a fresh PREFECT_HOME. One warm-up run
  on one extra entry happens first (API server start, flow registration, imports): it is
  reported as "start-up" and NOT counted in the timed run;
- the N entries are enqueued after the warm-up and before the clock starts; the clock
  covers exactly one call: ``asyncio.run(profile_fetcher(batch_size=B))`` for the flow,
  ``bench.baseline_asyncio.main()`` for the baseline, ``bench.naive_prefect.run(B)``
  for the naive flow;
- afterwards the subprocess checks that all N entries are COMPLETED, that N profile rows
  and 2N object files exist, and the parent checks the sandbox saw exactly N profile
  requests in the timed run; any miss fails the benchmark;
- peak RSS is ``ru_maxrss`` of the variant's process; the Prefect API server, a child
  process of the variant, is reported separately (its VmHWM from /proc). CPU seconds of the
  timed run are reported for the variant's process and for the API server: on a small or
  shared machine they are steadier than wall time. The API server records task-run events
  asynchronously, so each timed run starts with it idle, and its CPU is counted until it is
  idle again ("during + after the run");
- ``--repeat R`` times R runs per subprocess (each on N new entries) and shows the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_ROOT / "bench" / "FETCHER_RESULTS.md"
URN_PREFIX = "ACoAABench"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

LABELS = {
    "flow": "profile_fetcher (Prefect flow)",
    "baseline": "plain asyncio baseline",
    "naive": "NAIVE Prefect: 1 task per entry",
}


# --------------------------------------------------------------------------- child side


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settle(pids: list[int], timeout: float = 60) -> float:
    """Wait until ``pids`` are idle (under 10 % of a core over half a second); returns the wait.

    The Prefect API server records task-run events asynchronously and can still be busy
    with one run when the next starts; timing the next run then would charge it for both.
    """
    began = time.perf_counter()
    while pids and time.perf_counter() - began < timeout:
        before = sum(_cpu_seconds(p) for p in pids)
        time.sleep(0.5)
        if sum(_cpu_seconds(p) for p in pids) - before < 0.05:
            break
    return time.perf_counter() - began


def _child(variant: str, entries_n: int, batch: int, repeat: int) -> None:
    """Inside the fresh subprocess: migrate, warm up (Prefect variants), then ``repeat`` times:
    enqueue N new entries, time one run over them. Verifies and prints one JSON line."""
    import asyncio

    from sqlalchemy import func, select

    from core.db import session_scope
    from core.db.migrate import upgrade
    from core.profiles import entries
    from core.profiles.models import Profile, ProfileEntry

    url = os.environ["DATABASE_URL"]
    upgrade(url)

    def run_once(size: int) -> str:
        if variant == "flow":
            from flows.profiles import profile_fetcher

            result = asyncio.run(profile_fetcher(batch_size=size))
            return str(result.status) if result else "disabled"
        if variant == "naive":
            from bench import naive_prefect

            return f"{naive_prefect.run(size)} completed"
        from bench.baseline_asyncio import main as baseline

        totals = baseline()
        return f"{totals.completed} completed, {totals.failed} failed in {totals.batches} batches"

    startup = 0.0
    if variant != "baseline":
        with session_scope(url) as session:
            entries.add_pending(session, ["ACoAAWarmup"])
        t0 = time.perf_counter()
        run_once(1)
        startup = time.perf_counter() - t0

    runs = []
    for rep in range(repeat):
        for start in range(0, entries_n, 1000):  # in chunks: the peak RSS is the run's, not the enqueue's
            with session_scope(url) as session:
                entries.add_pending(session, [f"{URN_PREFIX}{rep:02d}x{i:06d}"
                                              for i in range(start, min(start + 1000, entries_n))])
        helpers = _descendants(os.getpid())  # the ephemeral Prefect API server, if any
        if os.environ.get("BENCH_SERVER_PID"):  # the long-lived local server and its children
            server = int(os.environ["BENCH_SERVER_PID"])
            helpers = [server, *_descendants(server)]
        _settle(helpers)
        cpu0, helper_cpu0 = _self_cpu(), sum(_cpu_seconds(p) for p in helpers)
        t0 = time.perf_counter()
        outcome = run_once(batch)
        seconds = time.perf_counter() - t0
        peak_at_run_end = _vm_hwm_mb(os.getpid())  # before the checks below (listing 2N files costs memory)
        cpu, helper_cpu = _self_cpu() - cpu0, sum(_cpu_seconds(p) for p in helpers) - helper_cpu0
        catch_up = _settle(helpers)  # the server's work for this run, finished after it returned
        runs.append({"seconds": seconds, "cpu": cpu, "outcome": outcome, "server_cpu": helper_cpu,
                     "peak_rss_mb": peak_at_run_end,
                     "server_cpu_total": sum(_cpu_seconds(p) for p in helpers) - helper_cpu0,
                     "server_catch_up": catch_up})

    bench_entries = ProfileEntry.urn.like(f"{URN_PREFIX}%")
    with session_scope(url) as session:
        statuses = dict(session.execute(  # type: ignore[arg-type]
            select(ProfileEntry.status, func.count()).where(bench_entries).group_by(ProfileEntry.status)).all())
        profiles = session.execute(select(func.count()).select_from(Profile).where(
            Profile.urn.like(f"{URN_PREFIX}%"))).scalar_one()
    objects_root = Path(os.environ["STORAGE_URL"].removeprefix("file://"))
    objects = sum(1 for _ in objects_root.rglob(f"{URN_PREFIX}*.json"))
    print("BENCH " + json.dumps({
        "runs": runs, "startup": startup, "statuses": statuses, "profiles": profiles, "objects": objects,
        "rss_mb": max(run["peak_rss_mb"] for run in runs),  # the process's peak until its last run ended
        "server_rss_mb": sum(_vm_hwm_mb(pid) for pid in helpers),
        "prefect_imported": "prefect" in sys.modules,
    }), flush=True)


# -------------------------------------------------------------------------- parent side


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sandbox:
    """``python -m sandbox rapidapi`` in its own process."""

    def __init__(self, latency_ms: float) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "rapidapi", "--port", str(self.port),
             "--latency-ms", str(latency_ms), "--monthly-limit", "100000000"],
            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.requests()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise SystemExit(f"sandbox did not start:\n{err[-2000:]}") from None
                time.sleep(0.1)

    def requests(self) -> int:
        import httpx

        return int(httpx.get(f"{self.url}/__sandbox/stats", timeout=5).json()["total_requests"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Database:
    """A fresh SQLite file, or a fresh PostgreSQL database that is dropped afterwards."""

    def __init__(self, kind: str, tmp: str, pg_admin: str) -> None:
        self.kind, self.pg_admin, self.name = kind, pg_admin, None
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp}/bench.db"
            return
        import psycopg
        from sqlalchemy.engine import make_url

        self.name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_admin.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = make_url(pg_admin).set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.name:
            import psycopg

            with psycopg.connect(self.pg_admin.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _run_variant(variant: str, *, entries: int, batch: int, args: argparse.Namespace,
                 sandbox: Sandbox) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix=f"bench-{variant}-")
    db = Database(args.db, tmp, args.pg_admin_url)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
            "DATABASE_URL": db.url, "DATA_DIR": f"{tmp}/data",
            "STORAGE_URL": Path(tmp, "objects").as_uri(), "RAPIDAPI_BASE_URL": sandbox.url,
            "RAPIDAPI_KEY": "sandbox-key", "RAPIDAPI_MONTHLY_QUOTA": "1000000",
            "NOTIFY_ENABLED": "false", "RAPIDAPI_CONCURRENCY": str(_concurrency(args, batch)),
            "CRON_BATCH_SIZE": str(batch),
            "PREFECT_HOME": f"{tmp}/prefect", "PREFECT_LOGGING_LEVEL": args.prefect_logging_level,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
            # On a busy 2-core machine the ephemeral API can take longer than the 20 s default.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        } | args.server_env
        before, sandbox_cpu = sandbox.requests(), _cpu_seconds(sandbox.proc.pid)
        load = os.getloadavg()[0]  # the machine is shared: how busy it was when this variant began
        out = subprocess.run(
            [sys.executable, "-m", "bench.profile_fetcher_bench", "--child", variant,
             "--entries", str(entries), "--batch-size", str(batch), "--repeat", str(args.repeat)],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
        requests = sandbox.requests() - before
        sandbox_cpu = _cpu_seconds(sandbox.proc.pid) - sandbox_cpu
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
        if out.returncode or line is None:
            raise SystemExit(f"{variant} (batch {batch}) failed, exit {out.returncode}:\n"
                             f"{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
        r: dict[str, Any] = json.loads(line[6:])
    finally:
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    r["requests"] = requests - (1 if variant in ("flow", "naive") else 0)  # minus the warm-up entry
    r.update(variant=variant, batch=batch, entries=entries, load=load, sandbox_cpu=sandbox_cpu)
    # The median run (by wall time) stands for the variant; with --repeat 1 it is the run.
    median = sorted(r["runs"], key=lambda run: run["seconds"])[(len(r["runs"]) - 1) // 2]
    r.update(seconds=median["seconds"], cpu=median["cpu"], server_cpu=median["server_cpu"],
             server_cpu_total=median.get("server_cpu_total", 0.0), catch_up=median.get("server_catch_up", 0.0),
             spread=[run["seconds"] for run in r["runs"]])
    total = entries * args.repeat
    problems = []
    if r["statuses"] != {"COMPLETED": total}:
        problems.append(f"entry statuses {r['statuses']} (want all {total} COMPLETED)")
    if r["profiles"] != total:
        problems.append(f"{r['profiles']} profile rows (want {total})")
    if r["objects"] != 2 * total:
        problems.append(f"{r['objects']} object files (want {2 * total})")
    if r["requests"] != total:
        problems.append(f"sandbox saw {r['requests']} profile requests (want {total})")
    if variant == "flow" and any(run["outcome"] != "SUCCESS" for run in r["runs"]):
        problems.append(f"run statuses {[run['outcome'] for run in r['runs']]} (want SUCCESS)")
    if variant == "baseline" and r["prefect_imported"]:
        problems.append("the baseline imported prefect")
    if problems:
        raise SystemExit(f"FAILED CHECK: {LABELS[variant]}, batch {batch}: " + "; ".join(problems))
    return r


def _concurrency(args: argparse.Namespace, batch: int) -> int:
    """The concurrency paired with ``batch`` (``--concurrency 5 16`` with ``--batch-size 10 100``)."""
    values = args.concurrency
    return values[args.batch_size.index(batch)] if len(values) == len(args.batch_size) else values[0]


def _machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((int(ln.split()[1]) // 1024 // 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    from importlib.metadata import version

    return (f"{os.cpu_count()} cores ({model}), {mem} GB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, Prefect {version('prefect')}, "
            f"SQLAlchemy {version('sqlalchemy')}, httpx {version('httpx')}")


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["| latency | variant | batch | entries | wall s | entries/s | CPU s: process "
           "| CPU s: API server, during + after the run | start-up s (untimed) | peak RSS MB | API server RSS MB | load before |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rate = r["entries"] / r["seconds"]
        name = LABELS[r["variant"]]
        if r["variant"] == "naive":
            name += f" ({r['entries']} entries; 1000 would take ~{1000 / rate:.0f} s)"
        prefect = r["variant"] != "baseline"
        after = r["server_cpu_total"] - r["server_cpu"]
        server_cpu = f"{r['server_cpu']:.2f} + {after:.2f}" if prefect else "-"
        startup = f"{r['startup']:.1f}" if prefect else "-"
        server_rss = f"{r['server_rss_mb']:.0f}" if prefect else "-"
        wall = f"{r['seconds']:.2f}"
        if len(r["spread"]) > 1:
            wall += f" ({min(r['spread']):.2f}-{max(r['spread']):.2f})"
        out.append(
            f"| {r['latency']:g} ms | {name} | {r['batch']} | {r['entries']} | {wall} | {rate:.0f} "
            f"| {r['cpu']:.2f} | {server_cpu} | {startup} | {r['rss_mb']:.0f} | {server_rss} | {r['load']:.1f} |")
    return "\n".join(out)


def _reading(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """One paragraph computed from the figures (so that it stays true when they change)."""

    def find(variant: str, latency: float, batch: int) -> dict[str, Any] | None:
        return next((r for r in rows if (r["variant"], r["latency"], r["batch"]) == (variant, latency, batch)),
                    None)

    parts = []
    for latency in args.latency_ms:
        for batch in args.batch_size:
            f, b = find("flow", latency, batch), find("baseline", latency, batch)
            if not (f and b):
                continue
            batches = -(-f["entries"] // batch)
            extra_wall = (f["seconds"] - b["seconds"]) / batches * 1000
            extra_cpu = (f["cpu"] + f["server_cpu_total"] - b["cpu"]) / batches * 1000
            parts.append(
                f"at {latency:g} ms and batch {batch} the flow does {f['entries'] / f['seconds']:.0f} entries/s, "
                f"{100 * b['seconds'] / f['seconds']:.0f} % of the baseline's {b['entries'] / b['seconds']:.0f}/s "
                f"(ratio {b['seconds'] / f['seconds']:.2f}; {b['seconds'] / (f['seconds'] + f['startup']):.2f} "
                f"with the flow's start-up of {f['startup']:.1f} s) "
                f"({extra_wall:+.0f} ms wall and {extra_cpu:+.0f} ms CPU, process + Prefect API server, "
                f"per batch of {batch})")
    text = "Reading: " + "; ".join(parts) + "." if parts else "Reading:"
    floor = [f"{latency:g} ms with {_concurrency(args, batch)} in flight (batch {batch}): "
             f"{_concurrency(args, batch) * 1000 / latency:.0f} entries/s"
             for latency in args.latency_ms if latency for batch in args.batch_size]
    if floor:
        text += (" The latency ceilings are " + ", ".join(floor)
                 + "; what separates each variant from them is CPU on a 2-core machine shared by the "
                   "variant, the sandbox, PostgreSQL and (for Prefect) the API server.")
    flows = [r for r in rows if r["variant"] == "flow"]
    bases = [r for r in rows if r["variant"] == "baseline"]
    if flows and bases:
        text += (f" Memory: the flow process peaks at {max(r['rss_mb'] for r in flows):.0f} MB RSS plus "
                 f"{max(r['server_rss_mb'] for r in flows):.0f} MB for the Prefect API server, the baseline "
                 f"at {max(r['rss_mb'] for r in bases):.0f} MB.")
    naive = [r for r in rows if r["variant"] == "naive"]
    for r in naive:
        same = [x for x in flows if x["latency"] == r["latency"]]
        best = max((x["entries"] / x["seconds"] for x in same), default=None)
        text += (f" The naive one-task-per-entry flow at {r['latency']:g} ms manages "
                 f"{r['entries'] / r['seconds']:.0f} entries/s on {r['entries']} entries (extrapolated: "
                 f"~{1000 * r['seconds'] / r['entries']:.0f} s per 1000)"
                 + (f", against {best:.0f}/s for profile_fetcher's best batch size." if best else "."))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=list(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 50])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-admin-url", default=os.environ.get("TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10],
                        help="RAPIDAPI_CONCURRENCY for every variant: one value, or one per --batch-size")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed runs per variant, in the same subprocess after one warm-up; the table "
                             "shows the median run (use 3 on a busy machine)")
    parser.add_argument("--naive-entries", type=int, default=200, help="0 skips the naive variant")
    parser.add_argument("--naive-batch-size", type=int, default=100)
    parser.add_argument("--prefect-logging-level", default="INFO",
                        help="PREFECT_LOGGING_LEVEL of the Prefect variants (INFO is Prefect's default: "
                             "every task run's logs are shipped to the API)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results file to write")
    parser.add_argument("--variants", nargs="+", choices=["flow", "baseline"], default=["flow", "baseline"])
    parser.add_argument("--server", choices=["ephemeral", "local"], default="ephemeral",
                        help="the Prefect API of the flow variants: a fresh ephemeral one per variant, or "
                             "the long-lived local server (`python -m deployments.dev.local_server up`), what "
                             "`make demo` and the README's examples use; its start is not counted")
    args = parser.parse_args()
    if len(args.concurrency) not in (1, len(args.batch_size)):
        parser.error("--concurrency takes one value, or one per --batch-size")
    if args.child:
        _child(args.child, args.entries, args.batch_size[0], args.repeat)
        return
    args.server_env = {}
    if args.server == "local":
        from deployments.dev import local_server

        api_url = local_server.up()
        pid = json.loads(local_server.STATE.read_text())["pid"]
        args.server_env = {"PREFECT_API_URL": api_url, "BENCH_SERVER_PID": str(pid)}

    began = time.perf_counter()
    print(f"{_machine()}\nFlow variants: one untimed warm-up run first (ephemeral API start-up).", flush=True)
    rows: list[dict[str, Any]] = []
    for latency in args.latency_ms:
        sandbox = Sandbox(latency)
        try:
            plan = [(v, args.entries, b) for b in args.batch_size for v in args.variants]
            if args.naive_entries:
                plan.append(("naive", args.naive_entries, args.naive_batch_size))
            for variant, n, batch in plan:
                r = _run_variant(variant, entries=n, batch=batch, args=args, sandbox=sandbox)
                r["latency"] = latency
                rows.append(r)
                print(f"  {latency:g} ms  {LABELS[variant]:<34} batch {batch:>4}: {r['seconds']:6.2f} s "
                      f"{n / r['seconds']:6.0f}/s  CPU {r['cpu']:.2f} s + API {r['server_cpu']:.2f}+{r['server_cpu_total'] - r['server_cpu']:.2f} s  RSS {r['rss_mb']:.0f} MB"
                      + (f"  (start-up {r['startup']:.1f} s untimed)" if r["startup"] else "")
                      + f"  load {r['load']:.1f}", flush=True)
        finally:
            sandbox.stop()
    total = time.perf_counter() - began
    table = _table(rows)
    command = "uv run python -m bench.profile_fetcher_bench " + " ".join(sys.argv[1:])
    params = (f"{args.entries} PENDING entries ({args.naive_entries} for the naive variant), sandbox latency "
              f"{', '.join(f'{x:g}' for x in args.latency_ms)} ms, RAPIDAPI_CONCURRENCY={'/'.join(map(str, args.concurrency))} (per batch size) for "
              f"every variant, Prefect API: {args.server}, PREFECT_LOGGING_LEVEL={args.prefect_logging_level}, database {args.db} (fresh per variant), local object folder, sandbox in its own "
              f"process, every variant in a fresh subprocess, {args.repeat} timed run(s) per variant (median shown); the whole benchmark took {total:.0f} s")
    reading = _reading(rows, args)
    print("\n" + table + "\n\n" + reading)
    if not args.no_write:
        args.results.write_text(
            f"# profile_fetcher benchmark\n\n`{command.strip()}`, {time.strftime('%Y-%m-%d %H:%M %Z')}\n\n"
            f"- Machine: {_machine()}\n- Parameters: {params}.\n"
            "- Timed: one run over the entries, after one untimed warm-up run of the Prefect "
            "variants on one extra entry in the same fresh process ("
            + ("ephemeral API start-up, " if args.server == "ephemeral" else "against the already running "
               "local server: ")
            + "imports, flow registration, the first flow run: the \"start-up\" column, what a "
            "one-off command pays). Peak RSS is ru_maxrss of the variant's process; the "
            "Prefect API server is its own process (next column). API server CPU is counted during "
            "the run and after it, until the server is idle again (it records task-run events "
            "asynchronously); each timed run starts with the server idle.\n"
            "- Checked after every variant: all entries COMPLETED, one profile row each, two object "
            "files each, exactly one sandbox request each.\n\n"
            f"{table}\n\n{reading}\n")
        print(f"\nwrote {args.results}")


if __name__ == "__main__":
    main()
