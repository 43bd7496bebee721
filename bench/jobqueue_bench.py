"""Job queue beside two PostgreSQL job queues, pgqueuer and procrastinate, on ONE database.

    uv run python -m bench.jobqueue_bench            # (make bench) writes bench/JOBQUEUE_RESULTS.md

No-op jobs, one worker process per side and setting, every job checked to have run exactly
once (see ``bench/peers/common.py`` for what is measured and how). This project runs in both
modes (one task run per job, one per claimed batch) against a real ``prefect server start``
(its own temporary home); the peers run from their own environment, ``bench/.peers-venv``,
created here with uv when missing (``pgqueuer``, ``procrastinate``, ``psycopg``: never the
product's dependencies).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.peers.common import start_worker, stop_worker

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "bench" / ".peers-venv"
PEERS_PY = PEERS_VENV / "bin" / "python"
ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = ROOT / "bench" / "JOBQUEUE_RESULTS.md"

SETTINGS: list[tuple[str, list[str]]] = [
    ("jobpipes", ["--mode", "job", "--parallel", "10"]),
    ("jobpipes", ["--mode", "job", "--parallel", "50"]),
    ("jobpipes", ["--mode", "batch", "--batch", "50", "--parallel", "100"]),
    ("jobpipes", ["--mode", "batch", "--batch", "200", "--parallel", "400"]),
    ("procrastinate", ["--concurrency", "1"]),
    ("procrastinate", ["--concurrency", "10"]),
    ("pgqueuer", ["--batch", "10"]),
    ("pgqueuer", ["--batch", "50"]),
]


def ensure_peers() -> dict[str, str]:
    if not PEERS_PY.exists():
        uv: list[str] = [path] if (path := shutil.which("uv")) else [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "-q", "-p", "3.11", str(PEERS_VENV)], check=True)
        subprocess.run([*uv, "pip", "install", "-q", "--python", str(PEERS_PY), "pgqueuer", "procrastinate",
                        "psycopg[binary]"], check=True)
    out = subprocess.run([str(PEERS_PY), "-c", "import importlib.metadata as m; print(m.version('pgqueuer'), "
                          "m.version('procrastinate'))"], capture_output=True, text=True, check=True).stdout.split()
    return {"pgqueuer": out[0], "procrastinate": out[1]}


def start_prefect(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "BENCH_MARKERS": str(home / "server")}
    proc = start_worker([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                         str(port)], env)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    stop_worker(proc)
    raise RuntimeError("prefect server did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_side(side: str, extra: list[str], dsn: str, env: dict[str, str], tmp: Path) -> dict[str, object]:
    markers = tmp / f"{side}-{uuid.uuid4().hex[:6]}.markers"
    py = [sys.executable] if side == "jobpipes" else [str(PEERS_PY)]
    cmd = [*py, "-m", f"bench.peers.{side}_side", "--dsn", dsn, "--markers", str(markers), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        log = Path(f"{markers}.worker.log")
        worker = log.read_text(errors="replace")[-6000:] if log.exists() else "(no worker log)"
        raise RuntimeError(f"{side} {extra} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}\n"
                           f"worker log (tail):\n{worker}")
    return dict(json.loads(lines[-1][len("RESULT "):]))


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _drain(r: dict[str, object], n: int) -> str:
    recorded, ran = r.get(f"drain_{n}_per_s"), r.get(f"drain_{n}_ran_per_s")
    if not isinstance(recorded, float):
        return "–"
    return f"{recorded:,.0f}" + (f" / {ran:,.0f}" if isinstance(ran, float) else "")


def table(results: list[dict[str, object]]) -> str:
    head = ("| side | setting | drain 1,000 (jobs/s): recorded / handlers ran | drain 5,000 (jobs/s): recorded / "
            "handlers ran | enqueue, 1 row/txn (/s) | idle enqueue→start p50 / p95 (ms) | worker RSS peak (MB) | "
            "exactly once |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for r in results:
        rss = r["worker_rss_mb"].get("VmHWM", float("nan"))  # type: ignore[attr-defined]
        server = r.get("server_rss_mb") or {}
        rss_text = f"{rss:.0f}" + (f" + Prefect server {server['VmRSS']:.0f}" if server else "")  # type: ignore[index]
        once = f"{r['ran_once']}/{r['jobs']}" + ("" if r["ran_once"] == r["jobs"] else
                                                 f" ({r['never_ran']} never, {r['ran_twice_or_more']} twice)")
        rows.append(f"| {r['side']} | {r['setting']} | {_drain(r, 1000)} | {_drain(r, 5000)} | "
                    f"{r['enqueue_per_s']:,.0f} | {r['latency_p50_ms']:.1f} / {r['latency_p95_ms']:.1f} | "
                    f"{rss_text} | {once} |")
    return head + "\n" + "\n".join(rows)


def goals(results: list[dict[str, object]]) -> str:
    """Issue 13's goals against this run (best setting of each mode; every 5,000 and 1,000 drain)."""
    ours = [r for r in results if r["side"] == "jobpipes"]
    if not ours:
        return ""

    def best(mode: str, key: str) -> float:
        values = [float(r[key]) for r in ours if str(r["setting"]).startswith(mode) and key in r]  # type: ignore[arg-type]
        return max(values) if values else float("nan")

    def line(name: str, value: float, goal: float, unit: str, higher: bool = True) -> str:
        met = value >= goal if higher else value <= goal
        return f"- {name}: {value:,.1f} {unit} (goal {'≥' if higher else '≤'} {goal:,.0f}): {'met' if met else 'NOT met'}"

    enqueue = sorted(float(r["enqueue_per_s"]) for r in ours)  # type: ignore[arg-type]
    p50 = min(float(r["latency_p50_ms"]) for r in ours)  # type: ignore[arg-type]
    return "\n".join([
        "Issue 13's goals, from this run (per mode the best setting for each drain, the lower of the two):",
        line("batch mode drain", min(best("batch", "drain_1000_per_s"), best("batch", "drain_5000_per_s")), 1000, "jobs/s"),
        line("per-job mode drain", min(best("per-job", "drain_1000_per_s"), best("per-job", "drain_5000_per_s")), 300,
             "jobs/s"),
        line("enqueue (median of the settings)", enqueue[len(enqueue) // 2], 1500, "/s"),
        line("idle enqueue→start p50 (best setting)", p50, 3, "ms", higher=False),
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sides", default="jobpipes,procrastinate,pgqueuer")
    parser.add_argument("--modes", default="job,batch", help="this project's modes to run")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--before", default="", help="a results file of an earlier commit, whose table is kept")
    args = parser.parse_args()
    sides, modes = set(args.sides.split(",")), set(args.modes.split(","))
    versions = ensure_peers()
    name = f"jobqueue_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="jobqueue-bench-"))
    started, load_before = datetime.now(UTC), load()
    results: list[dict[str, object]] = []
    server = None
    try:
        from core.db.migrate import upgrade

        upgrade(dsn)
        server, api = start_prefect(tmp / "prefect-home")
        env = {"PREFECT_API_URL": api, "BENCH_PREFECT_PID": str(server.pid), "PREFECT_LOGGING_LEVEL": "INFO"}
        for side, extra in SETTINGS:
            if side in sides and (side != "jobpipes" or extra[1] in modes):
                print(f"{side} {' '.join(extra)} ...", flush=True)
                results.append(run_side(side, extra, dsn, env, tmp))
                print(json.dumps(results[-1]), flush=True)
    finally:
        if server:
            stop_worker(server)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)
    finished = datetime.now(UTC)
    before = ""
    if args.before:
        earlier = Path(args.before).read_text().splitlines()
        before = "\n".join(["", "Before this change, same harness, same session (per-job mode only existed):", "",
                             *[line for line in earlier if line.startswith("|")], ""])
    text = f"""# Job queue benchmark: this project beside pgqueuer and procrastinate

`make bench` (`uv run python -m bench.jobqueue_bench`), measured {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC on
this machine ({os.cpu_count()} cores, shared: load average {load_before} before, {load()} after), PostgreSQL on
127.0.0.1, one database for all sides; pgqueuer {versions['pgqueuer']} and procrastinate {versions['procrastinate']}
from their own environment (`bench/.peers-venv`); this project's worker is `python -m deployments.worker.jobs_worker` (one
process) against a `prefect server start` of its own (SQLite), Prefect logging at INFO.

No-op jobs; drain = N jobs committed in one transaction into an idle worker until the last is recorded done;
enqueue = {2000:,} jobs, one row per transaction, no worker running (this project: `start_job` in a SQLAlchemy
session); idle enqueue→start = 50 jobs 100 ms apart, handler start minus commit; every job of every round checked
to have run exactly once (markers written by the handlers).

{table(results)}

{goals(results)}
{before}

Per-job mode records one `execute-job` task run per job; batch mode one `execute-job-batch` task run per claimed
batch, whose table artifact and log list every job with its status, duration and error. For this project the
per-type concurrency limit (`jobsWorker.defaultConcurrency`) is set equal to `maxParallel`.
"""
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
