"""One long-lived local Prefect server for this checkout: started once, reused by every command.

Without ``PREFECT_API_URL`` each process that runs a flow starts Prefect's ephemeral API
first (about 5 s here, before any work). ``make demo``, the README's notebook and CLI
examples instead use one ``prefect server start`` kept running under ``.data/prefect/``:

    uv run python -m deployments.dev.local_server up      # start (or find) it; prints the export line
    eval "$(uv run python -m deployments.dev.local_server env)"
    uv run python -m deployments.dev.local_server down    # stop it (also `make down`, `make clean`)

Its UI is the server's root URL. A ``PREFECT_API_URL`` already set always wins: nothing is
started then. Its home, state and log (``server.log``) live in ``$DATA_DIR/prefect``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.config import local_server_dir

# Under the product's data folder (``DATA_DIR``, default ``.data``), like the embedded database.
STATE_DIR = local_server_dir()
STATE = STATE_DIR / "server.json"
LOG = STATE_DIR / "server.log"
# No fixed start-up timeout: a first start on a busy 2-core machine took 120 s. The wait ends
# when the server answers, exits, or neither logs nor uses CPU for this long.
STALL_TIMEOUT_S = 60
MAX_WAIT_S = 900
SAY_EVERY_S = 15


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(preferred: int = 4200) -> int:
    """``preferred`` when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def running() -> str | None:
    """The API URL of this checkout's server when it answers, else None."""
    try:
        state = json.loads(STATE.read_text())
    except (OSError, ValueError):
        return None
    api_url = str(state.get("api_url", ""))
    return api_url if api_url and _healthy(api_url) else None


def up() -> str:
    """Start the server unless it runs; returns its API URL (``http://127.0.0.1:PORT/api``)."""
    if api_url := running():
        return api_url
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")} | {
        "PREFECT_HOME": str(STATE_DIR / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": api_url, "DO_NOT_TRACK": "1"}
    log_start = LOG.stat().st_size if LOG.exists() else 0
    with LOG.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=STATE_DIR)
    STATE.write_text(json.dumps({"pid": proc.pid, "api_url": api_url}))
    _wait_until_healthy(proc, api_url, log_start)
    return api_url


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _last_lines(offset: int, count: int = 20) -> list[str]:
    try:
        with LOG.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace").splitlines()[-count:]
    except OSError:
        return []


def _wait_until_healthy(proc: subprocess.Popen[bytes], api_url: str, log_start: int) -> None:
    """Wait while the server makes progress (its log grows or it uses CPU): a busy machine
    only makes the start slower. It fails when the process exits or makes no progress for
    STALL_TIMEOUT_S; then the process is stopped and the log's last lines are in the error."""
    started = last_progress = last_said = time.monotonic()
    seen = (LOG.stat().st_size if LOG.exists() else 0, _cpu_seconds(proc.pid))
    while not _healthy(api_url):
        now = time.monotonic()
        progress = (LOG.stat().st_size if LOG.exists() else 0, _cpu_seconds(proc.pid))
        if progress != seen:
            seen, last_progress = progress, now
        if proc.poll() is not None or now - last_progress > STALL_TIMEOUT_S or now - started > MAX_WAIT_S:
            why = (f"exited with code {proc.returncode}" if proc.returncode is not None
                   else f"made no progress for {STALL_TIMEOUT_S} s" if now - last_progress > STALL_TIMEOUT_S
                   else f"did not answer within {MAX_WAIT_S} s")
            down()
            tail = "\n".join(f"  {line}" for line in _last_lines(log_start))
            raise RuntimeError(f"the local Prefect server {why} after {now - started:.0f} s; "
                               f"the last lines of {LOG}:\n{tail}")
        if now - last_said >= SAY_EVERY_S:
            lines = _last_lines(log_start, 1)
            print(f"waiting for the local Prefect server at {api_url} ({now - started:.0f} s; it is "
                  f"starting: {lines[-1].strip()[:100] if lines else 'no log line yet'})", file=sys.stderr, flush=True)
            last_said = now
        time.sleep(0.3)


def down() -> bool:
    """Stop this checkout's server; False when none was running."""
    try:
        pid = int(json.loads(STATE.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    STATE.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def use() -> str:
    """Point this process at a long-lived server: ``PREFECT_API_URL`` if set, else ours (started)."""
    api_url = os.environ.get("PREFECT_API_URL") or up()
    os.environ["PREFECT_API_URL"] = api_url
    return api_url


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "up":
        api_url = up()
        print(f"export PREFECT_API_URL={api_url}   # Prefect UI: {api_url.removesuffix('/api')}")
    elif command == "env":
        print(f"export PREFECT_API_URL={up()}")
    elif command == "down":
        print("stopped" if down() else "not running")
    elif command == "status":
        print(running() or "not running")
    else:
        print("usage: python -m deployments.dev.local_server [up|env|down|status]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
