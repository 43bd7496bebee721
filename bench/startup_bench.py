"""Where the start-up of a flow command goes, and what the long-lived local server saves.

Each figure is the median wall time of ``--runs`` (3) fresh ``python`` processes (what a CLI
call, a notebook kernel or a demo pays before any work), with the median CPU time (user +
system) of the same processes beside it: on a busy machine the wall time swings, the CPU time
much less. Writes ``bench/STARTUP_RESULTS.md``.

    uv run python -m bench.startup_bench                          # this checkout
    uv run python -m bench.startup_bench --baseline /tmp/before   # and a before column:
    git worktree add --detach /tmp/before <commit>                # ... made like this

Every process runs with a bytecode cache (``PYTHONPYCACHEPREFIX`` in a temporary folder,
warmed once first), as a second call does wherever Python may write ``.pyc`` files or the
venv was installed with compiled bytecode. One row shows the run without it
(``PYTHONDONTWRITEBYTECODE=1`` and a venv without ``.pyc`` files: every import compiles).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import prefect

from core.db.migrate import upgrade
from deployments.dev.local_server import up

ROOT = Path(__file__).resolve().parents[1]
RUN = ("import asyncio\nfrom flows.profiles import profile_fetcher\n"
       "asyncio.run(profile_fetcher(batch_size=5))")
# By path, so that a --baseline tree (which may not have it) runs the same child.
CHILD = [str(ROOT / "bench" / "startup_child.py")]
# The phases of one empty run, from bench.startup_child's stamps (parent's spawn and exit added).
PHASES = [
    ("interpreter start", "spawn", "started"),
    ("import prefect", "started", "prefect"),
    ("import flows.profiles after prefect (sqlalchemy, our code, the flows' Prefect modules)",
     "prefect", "imported"),
    ("flow run created and Running (client, API calls, parameters)", "run", "running"),
    ("flow body: our tasks, history, artifact, final state", "running", "final"),
    ("after the final state", "final", "ended"),
    ("interpreter exit (final garbage collection, Prefect's workers drained)", "ended", "exit"),
]


@dataclass
class Sample:
    wall: float
    cpu: float
    stamps: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, float] = field(default_factory=dict)


def _child(args: list[str], env: dict[str, str], cwd: Path) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawn = time.time()
    started = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=env | {"PYTHONPATH": str(cwd)},
                         capture_output=True, text=True)
    wall = time.perf_counter() - started
    ended = time.time()
    if out.returncode:
        raise RuntimeError(f"{args} in {cwd} failed:\n{out.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sample = Sample(wall, cpu)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if lines:
        data = json.loads(lines[-1])
        sample.tasks = data.pop("tasks", {})
        sample.stamps = data | {"spawn": spawn, "exit": ended}
    return sample


def _median(samples: list[Sample], get: Callable[[Sample], float]) -> float:
    return statistics.median(get(s) for s in samples)


class Bench:
    def __init__(self, env: dict[str, str], runs: int, baseline: Path | None) -> None:
        self.env, self.runs, self.baseline = env, runs, baseline
        self.rows: list[tuple[str, str, str]] = []

    def measure(self, args: list[str], env: dict[str, str] | None = None,
                trees: tuple[Path | None, ...] = (ROOT,)) -> list[list[Sample]]:
        """``runs`` samples in each tree, interleaved so that both see the same load."""
        samples: list[list[Sample]] = [[] for _ in trees]
        for _ in range(self.runs):
            for i, tree in enumerate(trees):
                if tree is not None:
                    samples[i].append(_child(args, env or self.env, tree))
        return samples

    @staticmethod
    def cell(samples: list[Sample], get: Callable[[Sample], float] | None = None) -> str:
        if not samples:
            return "-"
        if get is not None:
            return f"{_median(samples, get):.2f} s"
        return f"{_median(samples, lambda s: s.wall):.2f} s (cpu {_median(samples, lambda s: s.cpu):.2f})"

    def row(self, what: str, args: list[str], *, compare: bool = True, env: dict[str, str] | None = None) -> None:
        trees = (self.baseline if compare else None, ROOT)
        before, now = self.measure(args, env, trees)
        self.rows.append((what, self.cell(before), self.cell(now)))
        print(self.rows[-1], flush=True)

    def run_rows(self, what: str, args: list[str], env: dict[str, str] | None = None,
                 compare: bool = True) -> tuple[list[Sample], list[Sample]]:
        """The empty run: its total and its phases (median of each phase on its own)."""
        trees = (self.baseline if compare else None, ROOT)
        before, now = self.measure(args, env, trees)
        def total(samples: list[Sample]) -> str:
            if not samples:
                return "-"
            walls = [s.wall for s in samples]
            return f"**{self.cell(samples)}**, {min(walls):.2f}-{max(walls):.2f}"
        self.rows.append((f"**{what}**", total(before), total(now)))
        for name, start, end in PHASES:
            def get(s: Sample, start: str = start, end: str = end) -> float:
                return s.stamps[end] - s.stamps[start]
            self.rows.append((f"&nbsp;&nbsp;{name}", self.cell(before, get), self.cell(now, get)))
        print("\n".join(map(str, self.rows[-len(PHASES) - 1:])), flush=True)
        return before, now


def _import_shares(env: dict[str, str], tree: Path, runs: int) -> dict[str, float]:
    """``-X importtime`` self times of ``import flows.profiles``, by owner (median over runs)."""
    totals: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import flows.profiles"], cwd=tree,
                             env=env | {"PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
        share = {"ours (core, tasks, flows)": 0.0, "sqlalchemy": 0.0, "prefect": 0.0,
                 "pydantic.v1 (Prefect's @flow)": 0.0, "Prefect's other dependencies": 0.0}
        for line in out.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", line)
            if not m:
                continue
            top, seconds = m[2].split(".")[0], int(m[1]) / 1e6
            key = ("ours (core, tasks, flows)" if top in ("core", "tasks", "flows") else
                   "pydantic.v1 (Prefect's @flow)" if m[2].startswith("pydantic.v1") else
                   top if top in ("sqlalchemy", "prefect") else "Prefect's other dependencies")
            share[key] += seconds
        for key, seconds in share.items():
            totals.setdefault(key, []).append(seconds)
    return {key: statistics.median(values) for key, values in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a checkout of the code before (a git worktree)")
    parser.add_argument("--skip-ephemeral", action="store_true", help="skip the slow ephemeral-API row")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'app.db'}"
        upgrade(url)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")} | {
            "DATABASE_URL": url, "DATA_DIR": tmp, "NOTIFY_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
        no_pyc = base | {"PYTHONDONTWRITEBYTECODE": "1"}
        cached = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        api_url = up()
        server = cached | {"PREFECT_API_URL": api_url}
        bench = Bench(cached, opts.runs, opts.baseline)
        for tree in (opts.baseline, ROOT):  # warm the bytecode cache (and the server) once
            if tree is not None:
                _child(CHILD, server, tree)
        bench.row("python alone", ["-c", "pass"], compare=False)
        bench.row("import prefect", ["-c", "import prefect"], compare=False)
        bench.row("import sqlalchemy and its ORM", ["-c", "import sqlalchemy.orm"], compare=False)
        bench.row("import flows.profiles (prefect, sqlalchemy, httpx, our code)", ["-c", "import flows.profiles"])
        bench.row("schema check, before: alembic upgrade on a database at head",
                  ["-c", f"from core.db.migrate import upgrade; upgrade({url!r})"], compare=False)
        bench.row("schema check, now: ensure_schema at head (one query, no Alembic import)",
                  ["-c", f"from core.db.migrate import ensure_schema; ensure_schema({url!r})"])
        inner = [float(subprocess.run([sys.executable, "-c",
                                       "from core.db.migrate import ensure_schema; import time; "
                                       f"t = time.perf_counter(); ensure_schema({url!r}); "
                                       "print(time.perf_counter() - t)"],
                                      cwd=ROOT, env=cached, capture_output=True, text=True, check=True).stdout)
                 for _ in range(opts.runs)]
        bench.rows.append(("&nbsp;&nbsp;of which engine and query (the rest is imports)", "-",
                           f"{statistics.median(inner) * 1000:.0f} ms"))
        if not opts.skip_ephemeral:
            bench.row("profile_fetcher on an empty queue, ephemeral API (before)", ["-c", RUN], compare=False)
        bench.row("profile_fetcher on an empty queue, long-lived local server (now)", ["-c", RUN], env=server)
        before, now = bench.run_rows("the same, by phase (bench.startup_child)", CHILD, env=server)
        venv_pyc = any(Path(prefect.__file__).parent.glob("__pycache__/__init__*.pyc"))
        _, no_cache = bench.run_rows("the same without a bytecode cache (PYTHONDONTWRITEBYTECODE=1"
                       f"{', but the venv has .pyc files' if venv_pyc else ', no .pyc in the venv'})",
                       CHILD, env=no_pyc | {"PREFECT_API_URL": api_url})
        shares_now = _import_shares(cached, ROOT, opts.runs)
        shares_before = _import_shares(cached, opts.baseline, opts.runs) if opts.baseline else {}
    tasks = {name: statistics.median(s.tasks.get(name, 0.0) for s in now) for name in now[0].tasks}
    _write(bench, opts, shares_before, shares_now, tasks, _verdict(before, now, no_cache))


def _phase(samples: list[Sample], start: str, end: str) -> float:
    return _median(samples, lambda s: s.stamps[end] - s.stamps[start])


def _verdict(before: list[Sample], now: list[Sample], no_cache: list[Sample]) -> list[str]:
    """Issue 13's goal, stated from this run's own figures."""
    total = _median(now, lambda s: s.wall)
    was = f" (before: {_median(before, lambda s: s.wall):.2f} s)" if before else ""
    prefect_import = _phase(now, "started", "prefect")
    rest_import = _phase(now, "prefect", "imported")
    created = _phase(now, "run", "running")
    body = _phase(now, "running", "final")
    exit_ = _phase(now, "ended", "exit")
    met = total < 3.0
    return [
        "## Issue 13's goal: a second `profile_fetcher` call from a fresh process in under 3 s", "",
        f"**{'Met' if met else 'Not met'}** on this machine in this run: {total:.2f} s{was} for an empty run "
        "against the long-lived local server, all of it start-up overhead. The spread of the fresh "
        f"processes (min-max beside each bold row: {min(s.wall for s in now):.2f}-{max(s.wall for s in now):.2f} s "
        "now) is what the machine's other load adds; a difference smaller than it is not a result.", "",
        f"- {prefect_import:.2f} s is `import prefect` and {rest_import:.2f} s the rest of the imports "
        "(SQLAlchemy with its ORM, our models and settings, the Prefect modules the flows use, and "
        "`pydantic.v1`, which Prefect's `@flow` imports to inspect parameters).",
        f"- {created:.2f} s is Prefect creating the flow run before our code runs (its client, "
        "`/admin/version`, the flow and flow-run POSTs, and FastAPI, which `Flow.serialize_parameters` "
        "imports on the first call with parameters).",
        f"- {body:.2f} s is the flow body: our tasks on an empty queue, the history row, the artifact, the "
        "final state (the table below).",
        f"- {exit_:.2f} s is the interpreter's exit (Prefect's workers drained; the import heap is frozen "
        "by `flows/__init__.py`, so the last garbage collection skips it: 0.7-0.8 s before).",
        f"- With `PYTHONDONTWRITEBYTECODE=1` (as on this machine): {_median(no_cache, lambda s: s.wall):.2f} s. "
        "`make` installs the venv with `--compile-bytecode`, so Prefect and SQLAlchemy still load from "
        ".pyc files; a venv installed without it compiles them in every process (about 8 s here).",
    ]


def _write(bench: Bench, opts: argparse.Namespace, shares_before: dict[str, float],
           shares_now: dict[str, float], tasks: dict[str, float], verdict: list[str]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    base_commit = ""
    if opts.baseline:
        base_commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=opts.baseline,
                                     capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    lines = [
        "# Start-up of a flow command", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this {os.cpu_count()}-core machine "
        f"(load average {load[0]:.1f} / {load[1]:.1f} at the end); median of {opts.runs} fresh processes "
        f"(`uv run python -m bench.startup_bench{' --baseline ...' if opts.baseline else ''}`), "
        "wall time with the CPU time (user + system) of the same processes beside it. "
        "Every process has a bytecode cache unless a row says otherwise.", "",
        f"Columns: *before* is commit {base_commit or '-'} (a git worktree), *now* is commit {commit}"
        f"{' plus uncommitted changes' if dirty else ''}.", "",
        "| what | before | now |", "|---|---|---|",
    ]
    lines += [f"| {what} | {before} | {now} |" for what, before, now in bench.rows]
    lines += ["", *verdict]
    lines += ["", "Import time of `import flows.profiles` by owner (`-X importtime` self times; the "
              "profiler's own overhead inflates them):", "", "| owner | before | now |", "|---|---|---|"]
    for key, seconds in shares_now.items():
        before = f"{shares_before[key]:.2f} s" if key in shares_before else "-"
        lines.append(f"| {key} | {before} | {seconds:.2f} s |")
    lines += ["", "The flow body's calls in the empty run (now, median):", "", "| call | wall time |", "|---|---|"]
    lines += [f"| {name} | {seconds * 1000:.0f} ms |" for name, seconds in tasks.items()]
    (ROOT / "bench" / "STARTUP_RESULTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
