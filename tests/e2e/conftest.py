"""Shared by the end-to-end tests: a real ``prefect server start`` and the CLI around it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect") if (BIN / "prefect").exists() else None
POOL = "jobpipes"  # prefect.yaml's work_pool.name (`deploy --all` ignores --pool)
TIME_BUDGET_S = 180
SERVER_START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 180


def _prefect_cmd(*args: str) -> list[str]:
    return [PREFECT, *args] if PREFECT else [sys.executable, "-m", "prefect", *args]


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"<{path.name}: missing>"
    text = path.read_text(errors="replace").splitlines()
    return f"--- last {lines} lines of {path} ---\n" + "\n".join(text[-lines:])


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux /proc; empty elsewhere).

    The process worker starts each flow run in a session of its own, so a signal to the
    worker's process group does not reach it; teardown ends these by pid.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _stop(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM the process group (and stray descendants), SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    strays = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _signal(strays, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        strays += _descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    _signal([p for p in strays if Path(f"/proc/{p}").exists()], signal.SIGKILL)


def _clean_env() -> dict[str, str]:
    """os.environ without any PREFECT_* or app variable that could point elsewhere."""
    app_vars = {"DATABASE_URL", "STORAGE_URL", "DATA_DIR", "CONFIG_FILE", "AWS_ENDPOINT_URL"}
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "RAPIDAPI_", "SMTP_", "NOTIFY_", "COINGECKO_", "CRON_"))
            and k not in app_vars}


def _cli(args: list[str], env: dict[str, str], logs: Path, timeout: float = 120
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_prefect_cmd(*args), cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (
        f"prefect {' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}\n{_tail(logs / 'worker.log')}\n{_tail(logs / 'server.log', 30)}")
    return result


# A Prefect server's log line at ERROR or above: its own format (``12:00:00.000 | ERROR   |
# prefect.server.services.scheduler - ...``) and uvicorn's (``ERROR:    Exception in ASGI application``).
_ERROR_LINE = re.compile(r"^\S+ \| (?:ERROR|CRITICAL)\s*\| (?P<logger>\S+)|^(?:ERROR|CRITICAL):\s")


def server_log_errors(log_path: Path, offset: int = 0) -> list[str]:
    """Every ERROR/CRITICAL line of a Prefect server's log after byte ``offset``, each with
    the service (logger) that wrote it and the line after it (the exception, when any)."""
    if not log_path.exists():
        return []
    with log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    found = []
    for i, line in enumerate(lines):
        match = _ERROR_LINE.match(line)
        if match:
            service = match.group("logger") or "uvicorn"
            detail = ""
            for after in lines[i + 1:i + 200]:  # the exception that ends its traceback, if any
                if re.match(r"^\d\d:\d\d:\d\d", after):
                    break
                if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", after.strip()):
                    detail = after.strip()[:300]
            found.append(f"[{service}] {line.strip()}" + (f"  ->  {detail}" if detail else ""))
    return found


def assert_server_healthy(log_path: Path, offset: int = 0) -> None:
    """Any ERROR in the server's log fails the test, naming the service and the line."""
    errors = server_log_errors(log_path, offset)
    assert not errors, f"the Prefect server logged {len(errors)} error(s) ({log_path}):\n" + "\n".join(errors[:20])


# Prefect's own settings that make the scheduler and the late-run service act in seconds:
# the scheduler visits every deployment each 2 s (and a changed one within 1 s), the late-run
# service marks a run Late 5 s after its start time.
FAST_SCHEDULER_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true",
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "5",
}


@dataclass
class PrefectServer:
    env: dict[str, str]  # the environment of a CLI talking to this server
    started: float  # time.monotonic() when the fixture began
    startup_s: float  # until /api/health answered
    log_path: Path


@contextmanager
def running_prefect_server(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[PrefectServer]:
    """``prefect server start`` with an isolated PREFECT_HOME on a free port; on the way out,
    any ERROR in its log fails the test."""
    started = time.monotonic()
    port = free_port()
    with prefect_database() as database_url:
        yield from _serve_prefect(tmp_path, started, port, database_url, extra_env)


@contextmanager
def prefect_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one Prefect server, dropped after: the server runs on
    PostgreSQL as in production (on SQLite, a loaded server logs ``database is locked``)."""
    name = f"prefect_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _serve_prefect(tmp_path: Path, started: float, port: int, database_url: str,
                   extra_env: dict[str, str] | None) -> Iterator[PrefectServer]:
    env = _clean_env() | {
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_CLI_COLORS": "false",
        "PREFECT_CLI_WRAP_LINES": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    } | (extra_env or {})
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            _prefect_cmd("server", "start", "--host", "127.0.0.1", "--port", str(port)),
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(env["PREFECT_API_URL"], log_path, server)
            yield PrefectServer(env, started, round(time.monotonic() - started, 1), log_path)
        finally:
            _stop(server)
    assert_server_healthy(log_path)


def wait_healthy(api_url: str, log_path: Path, proc: subprocess.Popen[bytes] | None = None,
                 timeout: float = SERVER_START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc is None or proc.poll() is None, f"prefect server exited\n{_tail(log_path)}"
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"prefect server not healthy after {timeout}s\n{_tail(log_path)}"
        time.sleep(0.3)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """A Prefect server whose scheduler is off: the tests start every run themselves (a test
    crossing a quarter hour would otherwise see the crons' runs on its worker)."""
    with running_prefect_server(tmp_path) as server:
        yield server


@pytest.fixture
def scheduling_prefect_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """A Prefect server whose scheduler runs, its loops shortened (``FAST_SCHEDULER_ENV``)."""
    with running_prefect_server(tmp_path, FAST_SCHEDULER_ENV) as server:
        yield server


@pytest.fixture
def project_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``python3`` as the venv's interpreter: a kernelspec first on JUPYTER_PATH, so that no
    user-level spec of the same name (another Python) is picked."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jobpipes (project venv)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


# Debian's Chromium, driven by Playwright (its own browser download cannot be reached here).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))

@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it when it can)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return CHROMIUM
