"""Shared by the end-to-end tests: a real ``prefect server start`` and the CLI around it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

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


@dataclass
class PrefectServer:
    env: dict[str, str]  # the environment of a CLI talking to this server
    started: float  # time.monotonic() when the fixture began
    startup_s: float  # until /api/health answered


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """``prefect server start`` with an isolated PREFECT_HOME on a free port."""
    started = time.monotonic()
    port = free_port()
    env = _clean_env() | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_CLI_COLORS": "false",
        "PREFECT_CLI_WRAP_LINES": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            _prefect_cmd("server", "start", "--host", "127.0.0.1", "--port", str(port)),
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                assert server.poll() is None, f"prefect server exited\n{_tail(log_path)}"
                try:
                    if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (
                    f"prefect server not healthy after {SERVER_START_TIMEOUT_S}s\n{_tail(log_path)}")
                time.sleep(0.3)
            yield PrefectServer(env, started, round(time.monotonic() - started, 1))
        finally:
            _stop(server)


