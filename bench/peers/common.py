"""What every side of the job-queue benchmark shares: stdlib and psycopg only, so that the
product's environment and the peers' own (``bench/.peers-venv``) can both import it.

Each side's driver measures the same things the same way, on the same database:

1. enqueue rate: ``enqueue_n`` jobs, one row per transaction, no worker running;
2. idle enqueue->start (after a warm-up job and 2 s idle): ``TRICKLE`` jobs, one per
   transaction, 100 ms apart: the handler's start time (written by the handler) minus the
   time the commit returned;
3. drain: N jobs committed in ONE transaction into an idle worker, until the last one is
   recorded as done (the side's own "done" query, polled every 10 ms), and until the last
   handler started (pgqueuer, for one, records completions in a buffer flushed later);
4. worker RSS (peak, VmHWM) of the ONE worker process;
5. exactly once: every no-op handler appends its token to a markers file; every token of
   every round must appear exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROUNDS = tuple(int(n) for n in os.environ.get("BENCH_ROUNDS", "1000,5000").split(",") if n)
TRICKLE = 50
ENQUEUE_N = 2000


class Markers:
    """The handlers' log of executions: one ``token<TAB>unix time`` line per run, read
    incrementally (only the bytes appended since the last look)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""
        self.first: dict[str, float] = {}
        self.counts: Counter[str] = Counter()

    def refresh(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            token, _, at = line.decode().partition("\t")
            if at:
                self.counts[token] += 1
                self.first.setdefault(token, float(at))

    def started(self, token: str) -> float | None:
        self.refresh()
        return self.first.get(token)

    def check_once(self, tokens: list[str]) -> tuple[int, int, int]:
        """(ran exactly once, never ran, ran more than once) among ``tokens``."""
        self.refresh()
        once = sum(1 for t in tokens if self.counts[t] == 1)
        missing = sum(1 for t in tokens if self.counts[t] == 0)
        return once, missing, len(tokens) - once - missing


_HANDLE: dict[str, object] = {}


def record(token: str) -> None:
    """Called by every side's no-op handler: one line per execution (line-buffered append)."""
    f = _HANDLE.get("f")
    if f is None:
        f = _HANDLE["f"] = open(os.environ["BENCH_MARKERS"], "a", buffering=1)  # noqa: SIM115 - kept open
    f.write(f"{token}\t{time.time():.6f}\n")  # type: ignore[attr-defined]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def rss_mb(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of ``pid`` in MB."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.01) -> float:
    """Poll ``check`` until true; returns the time (time.time()) it first was."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached in time")
        time.sleep(every)
    return time.time()


def start_worker(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(env["BENCH_MARKERS"] + ".worker.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(argv, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def emit(result: dict[str, object]) -> None:
    """A driver's result: one JSON line on stdout, read by ``bench.jobqueue_bench``."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def measure(*, enqueue_one: Callable[[str], None], enqueue_many: Callable[[list[str]], None],
            remaining: Callable[[], int], clear: Callable[[], None], start: Callable[[], subprocess.Popen[bytes]],
            markers: Markers, label: str, rounds: tuple[int, ...] = ROUNDS) -> dict[str, object]:
    """The whole measurement for one side and setting, given the side's operations."""
    result: dict[str, object] = {"label": label}
    tokens: list[str] = []
    t0 = time.perf_counter()
    for i in range(ENQUEUE_N):
        enqueue_one(f"{label}-enq-{i}")
    result["enqueue_per_s"] = ENQUEUE_N / (time.perf_counter() - t0)
    clear()
    proc = start()
    try:
        warm = f"{label}-warm"
        enqueue_one(warm)
        tokens.append(warm)
        wait_until(lambda: markers.started(warm) is not None, timeout=180, every=0.05)
        wait_until(lambda: remaining() == 0, timeout=60)
        time.sleep(2)  # idle: the worker, and for this project the Prefect server, settled
        latencies = []
        for i in range(TRICKLE):
            token = f"{label}-t{i}"
            tokens.append(token)
            enqueue_one(token)
            committed = time.time()
            deadline = time.monotonic() + 30
            while (started := markers.started(token)) is None and time.monotonic() < deadline:
                time.sleep(0.001)
            if started is not None:
                latencies.append((started - committed) * 1000)
            time.sleep(0.1)
        wait_until(lambda: remaining() == 0, timeout=60)
        for n in rounds:
            batch = [f"{label}-d{n}-{i}" for i in range(n)]
            tokens += batch
            enqueue_many(batch)
            committed = time.time()
            done = wait_until(lambda: remaining() == 0, timeout=600)
            result[f"drain_{n}_per_s"] = n / (done - committed)
            markers.refresh()
            ran = max(markers.first.get(t, done) for t in batch)
            result[f"drain_{n}_ran_per_s"] = n / (ran - committed)
        result["latency_p50_ms"] = pct(latencies, 0.5)
        result["latency_p95_ms"] = pct(latencies, 0.95)
        result["worker_rss_mb"] = rss_mb(proc.pid)
    finally:
        stop_worker(proc)
    once, missing, twice = markers.check_once(tokens)
    result.update(jobs=len(tokens), ran_once=once, never_ran=missing, ran_twice_or_more=twice)
    return result
