"""N workers, one profile-fetcher run: throughput with 1, 2 and 4 workers, deployed as the README says.

    uv run python -m bench.workers_bench [--entries 2000 10000] [--workers 1 2 4] [--latency-ms 50]
        [--out bench/WORKERS_RESULTS.md] [--no-write]

The shape is the README's "Deploying with a work pool and workers": ``prefect server start`` on
PostgreSQL, a ``process`` pool, ``prefect deploy --name profile-fetcher``, a process worker
started in an empty directory that gets the code through the pull step from a git remote (a
repository holding this working tree as one commit), and N - 1 task workers
(``python -m deployments.worker.task_worker``) running from a clone of the same remote. The
RapidAPI sandbox runs as its own process with ``--latency-ms``; every setting is the product's
default (``rapidapi.concurrency`` 5, ``batchesInFlight`` 2, batch size 10).

For each entry count and worker count: a fresh app database, N entries PENDING, the workers
started and subscribed, then ``prefect deployment run profile-fetcher/profile-fetcher --param
parallel_runs=N --watch``. Throughput is the entries over the run's own time (the history row's
``started_at`` to ``finished_at``: the flow run's body, from its first claim to its last
write); the share delay is each share's ``started_at`` minus the run's. Each measurement checks
every entry COMPLETED once and the ledger equal to what the sandbox billed, or fails. CPU
seconds of every process (workers, their flow-run and task processes, the Prefect server, the
sandbox) are read from /proc around the run. Writes ``bench/WORKERS_RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select

from bench.scratch import ADMIN, scratch_database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "WORKERS_RESULTS.md"
PREFECT = str(Path(sys.executable).with_name("prefect"))
RUN_TIMEOUT_S = 1800


def _spawn(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: no {text!r}\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def _tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of ``pids`` and all their descendants, from /proc."""
    from tests.e2e.conftest import _descendants

    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in {p for root in pids for p in (root, *_descendants(root))}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
    return total


def _measure(entries: int, workers: int, *, server_env: dict[str, str], sandbox_url: str, remote: str,
             clone: Path, tmp: Path, server_pid: int, sandbox_pid: int) -> dict[str, Any]:
    from core.db import session_scope
    from core.profiles import entries as entry_rows
    from core.profiles.models import ApiQuota, FetchShare, ProfileEntry
    from core.runs.models import JobExecutionHistory
    from tests.e2e.conftest import _stop
    from tests.factories import set_quota

    work = tmp / f"run-{entries}-{workers}"
    work.mkdir()
    with scratch_database("workers_bench") as url, ExitStack() as stack:
        env = server_env | {
            "DATABASE_URL": url, "RAPIDAPI_BASE_URL": sandbox_url, "RAPIDAPI_KEY": "sandbox-key",
            "STORAGE_URL": (work / "objects").as_uri(), "DATA_DIR": str(work / "data"), "NOTIFY_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        os.environ["DATABASE_URL"] = url  # this process reads the same tables
        from core.settings import get_settings
        get_settings.cache_clear()
        set_quota(url, limit=10 * entries)
        procs = []
        log = work / "process-worker.log"
        proc = _spawn([PREFECT, "worker", "start", "--pool", "jobpipes", "--type", "process"], work / "empty",
                      env | {"JOBPIPES_GIT_URL": remote, "JOBPIPES_CODE_DIR": str(tmp), "PREFECT_LOGGING_LEVEL": "INFO"},
                      log)
        stack.callback(_stop, proc)
        procs.append(proc)
        _wait_for(log, "started!", proc)
        for i in range(workers - 1):
            log = work / f"task-worker-{i}.log"
            proc = _spawn([sys.executable, "-m", "deployments.worker.task_worker"], clone,
                          env | {"PREFECT_LOGGING_LEVEL": "INFO"}, log)
            stack.callback(_stop, proc)
            procs.append(proc)
            _wait_for(log, "Subscribing to runs", proc)
        time.sleep(2)  # subscriptions open, the process worker polling
        with session_scope(url) as session:
            entry_rows.add_pending(session, [f"ACoAABench{i:07d}" for i in range(entries)])
        httpx.post(f"{sandbox_url}/__sandbox/reset", timeout=10).raise_for_status()
        watched = [server_pid, sandbox_pid, *(p.pid for p in procs)]
        peak = stack.enter_context(_peak_connections(url.rsplit("/", 1)[1]))
        cpu0, server0, t0 = _tree_cpu(watched), _tree_cpu([server_pid]), time.monotonic()
        run = subprocess.run([PREFECT, "deployment", "run", "profile-fetcher/profile-fetcher", "--param",
                              "batch_size=10", "--param", f"parallel_runs={workers}", "--watch",
                              "--watch-timeout", str(RUN_TIMEOUT_S)], cwd=ROOT, env=server_env,
                             capture_output=True, text=True, timeout=RUN_TIMEOUT_S + 30)
        wall = time.monotonic() - t0
        cpu = _tree_cpu(watched) - cpu0
        server_cpu = _tree_cpu([server_pid]) - server0
        task_runs = _task_runs_of_last_run(server_env["PREFECT_API_URL"])
        if run.returncode != 0 or "Completed" not in run.stdout:
            raise RuntimeError(f"run failed:\n{run.stdout}\n{run.stderr}\n"
                               + "\n".join((work / n).read_text()[-3000:] for n in os.listdir(work) if n.endswith(".log")))
        with session_scope(url) as session:
            statuses = dict(session.execute(select(ProfileEntry.status, func.count())
                                            .group_by(ProfileEntry.status)).all())
            by_claimant = sorted((n for _, n in session.execute(
                select(ProfileEntry.claimed_by, func.count()).group_by(ProfileEntry.claimed_by)).all()),
                reverse=True)
            history = session.execute(select(JobExecutionHistory)
                                      .where(JobExecutionHistory.job_name == "profile_fetcher")).scalar_one()
            shares = session.execute(select(FetchShare)).scalars().all()
            share_states = sorted(s.state for s in shares)
            share_delays = sorted((s.started_at - history.started_at).total_seconds() for s in shares if s.started_at)
            q = session.execute(select(ApiQuota)).scalar_one()
            used, reserved = q.calls_used, q.reserved
            seconds = (history.finished_at - history.started_at).total_seconds()
            status = history.status
        billed = httpx.get(f"{sandbox_url}/__sandbox/stats", timeout=10).json()["statuses"].get("200", 0)
        if os.environ.get("WORKERS_BENCH_LOGS"):
            for n in sorted(os.listdir(work)):
                if n.endswith(".log"):
                    print(f"--- {n}\n" + (work / n).read_text(errors="replace")[-2500:], flush=True)
        if statuses != {"COMPLETED": entries} or (used, reserved) != (billed, 0) or billed != entries:
            raise RuntimeError(f"not exact: {statuses}, ledger {used}/{reserved}, billed {billed}")
    return {"entries": entries, "workers": workers, "seconds": seconds, "rate": entries / seconds, "wall": wall,
            "status": status, "share_states": share_states, "share_delays": share_delays, "by_claimant": by_claimant, "cpu": cpu,
            "cpu_per_entry_ms": 1000 * cpu / entries, "server_cpu": server_cpu, "task_runs": task_runs,
            "peak_app_db_connections": peak[0]}


@contextmanager
def _peak_connections(datname: str) -> Iterator[list[int]]:
    """The most connections to ``datname`` seen at once (``pg_stat_activity``, every 0.2 s)."""
    import threading

    peak, stop = [0], threading.Event()

    def poll() -> None:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            while not stop.is_set():
                (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (datname,)).fetchone()
                peak[0] = max(peak[0], n)
                stop.wait(0.2)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(timeout=5)


def _task_runs_of_last_run(api_url: str) -> dict[str, int]:
    """The task runs of the newest flow run (the one just measured), by task name: what the run
    and its shares cost the Prefect server."""
    runs = httpx.post(f"{api_url}/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC", "limit": 1},
                      timeout=30).json()
    counts: dict[str, int] = {}
    offset = 0
    while True:
        page = httpx.post(f"{api_url}/task_runs/filter", timeout=30, json={
            "flow_runs": {"id": {"any_": [runs[0]["id"]]}}, "limit": 200, "offset": offset}).json()
        for tr in page:
            name = tr["name"].rsplit("-", 1)[0]
            counts[name] = counts.get(name, 0) + 1
        if len(page) < 200:
            break
        offset += 200
    background = httpx.post(f"{api_url}/task_runs/filter", timeout=30, json={
        "task_runs": {"name": {"like_": "fetch-profiles-share"},
                      "expected_start_time": {"after_": runs[0]["expected_start_time"]}}, "limit": 200}).json()
    counts["fetch-share (background)"] = len(background)
    return counts


def _machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _report(results: list[dict[str, Any]], args: argparse.Namespace, load: tuple[str, str]) -> str:
    lines = [
        "# N workers, one profile-fetcher run", "",
        f"`uv run python -m bench.workers_bench --entries {' '.join(map(str, args.entries))} --workers "
        f"{' '.join(map(str, args.workers))} --latency-ms {args.latency_ms}`", "",
        f"Machine: {_machine()}. Load average before / after: {load[0]} / {load[1]}.", "",
        "Deployed as the README says: `prefect server start` on PostgreSQL, a `process` pool, the process worker "
        "in an empty directory (code through the pull step from a git remote), N - 1 task workers "
        "(`python -m deployments.worker.task_worker`) from a clone of the remote; the RapidAPI sandbox as its own "
        f"process at {args.latency_ms} ms latency; product defaults (concurrency 5, 2 batches in flight, batch 10). "
        "Throughput: entries over the run's history row (`started_at` to `finished_at`). Every measurement "
        "checked all entries COMPLETED once and the ledger equal to the sandbox's billed count.", "",
        "| entries | workers | run s | entries/s | vs 1 worker | share start after run start (s) | "
        "entries per claimant | CPU s (all processes) | CPU ms / entry | Prefect server CPU s | task runs | "
        "app DB connections, peak |",
        "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    base = {r["entries"]: r["rate"] for r in results if r["workers"] == 1}
    for r in results:
        ratio = f"{r['rate'] / base[r['entries']]:.2f}x" if r["entries"] in base else "-"
        delays = ", ".join(f"{d:.1f}" for d in r["share_delays"]) or "-"
        lines.append(f"| {r['entries']:,} | {r['workers']} | {r['seconds']:.1f} | {r['rate']:.1f} | {ratio} | "
                     f"{delays} | {' / '.join(map(str, r['by_claimant']))} | {r['cpu']:.0f} | "
                     f"{r['cpu_per_entry_ms']:.1f} | {r['server_cpu']:.1f} | {sum(r['task_runs'].values())} | "
                     f"{r['peak_app_db_connections']} |")
    lines += ["", "Raw: ", "", "```json", json.dumps(results, indent=1), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers_bench")
    parser.add_argument("--entries", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (default bench/WORKERS_RESULTS.md)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    from deployments.dev.local_server import free_port
    from tests.e2e.conftest import _stop, running_prefect_server

    load0 = "/".join(f"{x:.1f}" for x in os.getloadavg())
    results = []
    with tempfile.TemporaryDirectory(prefix="workers-bench-") as name, ExitStack() as stack:
        tmp = Path(name)
        server = stack.enter_context(running_prefect_server(tmp))
        server_pid = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                          and "server" in _cmdline(p) and server.env["PREFECT_API_URL"].split(":")[-1].split("/")[0]
                          in _cmdline(p))
        port = free_port(8390)
        sandbox_log = tmp / "sandbox.log"
        sandbox = _spawn([sys.executable, "-m", "sandbox", "rapidapi", "--port", str(port), "--latency-ms",
                          str(args.latency_ms)], ROOT, dict(os.environ), sandbox_log)
        stack.callback(_stop, sandbox)
        sandbox_url = f"http://127.0.0.1:{port}"
        _wait_http(sandbox_url + "/__sandbox/stats")
        from tests.e2e.test_workers import _git_remote

        remote = _git_remote(tmp)
        clone = tmp / "clone"
        subprocess.run(["git", "clone", "-q", "--depth", "1", remote, str(clone)], check=True)
        for cmd in (["work-pool", "create", "jobpipes", "--type", "process"],
                    ["--no-prompt", "deploy", "--name", "profile-fetcher"]):
            done = subprocess.run([PREFECT, *cmd], cwd=ROOT, env=server.env, capture_output=True, text=True,
                                  timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"prefect {' '.join(cmd)}:\n{done.stdout}\n{done.stderr}")
        for entries in args.entries:
            for workers in args.workers:
                result = _measure(entries, workers, server_env=server.env, sandbox_url=sandbox_url, remote=remote,
                                  clone=clone, tmp=tmp, server_pid=server_pid, sandbox_pid=sandbox.pid)
                print(json.dumps(result), flush=True)
                results.append(result)
    load1 = "/".join(f"{x:.1f}" for x in os.getloadavg())
    report = _report(results, args, (load0, load1))
    print(report)
    if not args.no_write:
        args.out.write_text(report)
    return 0


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        time.sleep(0.3)


if __name__ == "__main__":
    raise SystemExit(main())
