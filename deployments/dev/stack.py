"""The whole local stack in one command (``jobpipes up`` / ``down`` / ``status`` / ``env``).

``up`` starts, or finds running, each part a user needs to try every job on one machine:

- the long-lived local Prefect server (``deployments.dev.local_server``: UI and API);
- every provider's sandbox in one process (``python -m sandbox all``), unless ``sandbox=False``;
- ``python -m deployments.serve``: every deployment, executed and scheduled from this machine;
- the operations API and page (``uvicorn deployments.api.app:app``) with a bearer token made
  once for this installation (``$DATA_DIR/stack/token``, mode 600) unless ``BRAND_ADMIN_TOKEN``
  is set.

Their pids, URLs and logs are in ``$DATA_DIR/stack/stack.json``, with the environment that
points a process at this stack (the Prefect API and the sandboxes). ``jobpipes`` commands
take that environment on their own while the stack runs (a variable already set wins);
``jobpipes env`` prints it for a shell or a notebook kernel.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.config import PROJECT_ROOT
from deployments.dev import local_server

STACK_DIR = local_server.STATE_DIR.parent / "stack"
STATE = STACK_DIR / "stack.json"
TOKEN = STACK_DIR / "token"
API_PORT = 8090
START_TIMEOUT_S = 180  # serve imports every flow and registers each deployment: slow on a busy machine
TOKEN_ENV = "BRAND_ADMIN_TOKEN"


class StackError(RuntimeError):
    """A part of the stack did not start; the message names it and its log."""


@dataclass(frozen=True)
class Part:
    name: str
    pid: int | None
    url: str | None
    log: str | None
    running: bool

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "url": self.url, "log": self.log, "running": self.running}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _read() -> dict[str, Any]:
    try:
        return dict(json.loads(STATE.read_text()))
    except (OSError, ValueError):
        return {"parts": {}, "env": {}}


def _write(state: dict[str, Any]) -> None:
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE)


def token() -> str:
    """The operations API's token: ``BRAND_ADMIN_TOKEN`` when set, else this installation's."""
    if given := os.environ.get(TOKEN_ENV):
        return given
    try:
        return TOKEN.read_text().strip()
    except OSError:
        STACK_DIR.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(24)
        fd = os.open(TOKEN, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        return value


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    log = STACK_DIR / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=PROJECT_ROOT)
    return proc, log


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait(name: str, proc: subprocess.Popen[bytes], log: Path, ready: Any, say: Any) -> None:
    """Until ``ready()``; a process that exits, or no readiness in START_TIMEOUT_S, is a StackError
    naming the log and showing its last lines (the process is stopped first)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    said = time.monotonic()
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            why = f"exited with {proc.returncode}" if proc.returncode is not None else \
                f"not ready after {START_TIMEOUT_S} s"
            _stop_pid(proc.pid)
            raise StackError(f"{name} {why}; last lines of {log}:\n{_tail(log)}")
        if time.monotonic() - said > 15:
            say(f"  still waiting for {name} ({int(time.monotonic() - deadline + START_TIMEOUT_S)} s)")
            said = time.monotonic()
        time.sleep(0.3)


def _stop_pid(pid: int | None, grace: float = 15) -> bool:
    if not _alive(pid):
        return False
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def up(*, sandbox: bool = True, serve: bool = True, api: bool = True, api_port: int = API_PORT,
       say: Any = print) -> dict[str, Any]:
    """Start what is not running yet; returns :func:`status`. Raises StackError naming the part
    that did not start (what started before it keeps running: ``down`` stops it)."""
    state = _read()
    parts: dict[str, Any] = state.setdefault("parts", {})
    say("Prefect server ...")
    prefect_api = local_server.up()
    parts["prefect"] = {"pid": _server_pid(), "url": prefect_api.removesuffix("/api"),
                        "log": str(local_server.LOG)}
    env_out: dict[str, str] = {"PREFECT_API_URL": prefect_api}

    sandboxes = STACK_DIR / "sandboxes.json"
    if sandbox:
        if not _alive(parts.get("sandboxes", {}).get("pid")):
            say("sandboxes ...")
            sandboxes.unlink(missing_ok=True)
            proc, log = _spawn("sandboxes", [sys.executable, "-m", "sandbox", "all", "--no-smtp",
                                             "--state-file", str(sandboxes)], dict(os.environ))
            _wait("the sandboxes", proc, log, sandboxes.exists, say)
            parts["sandboxes"] = {"pid": proc.pid, "url": None, "log": str(log)}
        found = json.loads(sandboxes.read_text())
        parts["sandboxes"]["urls"] = found["urls"]
        env_out |= found["env"]
    else:
        _stop_pid(parts.pop("sandboxes", {}).get("pid"))
    state["env"] = env_out
    _write(state)

    child_env = {k: v for k, v in os.environ.items() if k not in env_out} | env_out
    child_env.setdefault(TOKEN_ENV, token())
    if serve and not _alive(parts.get("serve", {}).get("pid")):
        say("serve (every deployment) ...")
        proc, log = _spawn("serve", [sys.executable, "-m", "deployments.serve"], child_env)
        start = log.stat().st_size if log.exists() else 0
        _wait("deployments.serve", proc, log, lambda: "being served" in log.read_text(errors="replace")[start:],
              say)
        parts["serve"] = {"pid": proc.pid, "url": None, "log": str(log)}
    if api and not _alive(parts.get("api", {}).get("pid")):
        port = local_server.free_port(api_port)
        say(f"operations API on port {port} ...")
        url = f"http://127.0.0.1:{port}"
        proc, log = _spawn("api", [sys.executable, "-m", "uvicorn", "deployments.api.app:app", "--host",
                                   "127.0.0.1", "--port", str(port), "--log-level", "warning"], child_env)
        _wait("the operations API", proc, log, lambda: _healthy(url + "/docs"), say)
        parts["api"] = {"pid": proc.pid, "url": url, "log": str(log)}
    _write(state)
    return status()


def _server_pid() -> int | None:
    try:
        return int(json.loads(local_server.STATE.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def status() -> dict[str, Any]:
    """Every part: its pid, URL, log and whether it runs; the stack's environment; the token's source."""
    state = _read()
    parts = state.get("parts", {})
    prefect_api = local_server.running()
    view = [Part("prefect", _server_pid() if prefect_api else None,
                 prefect_api.removesuffix("/api") if prefect_api else None, str(local_server.LOG),
                 prefect_api is not None).view()]
    for name in ("sandboxes", "serve", "api"):
        if name in parts:
            p = parts[name]
            item = Part(name, p.get("pid"), p.get("url"), p.get("log"), _alive(p.get("pid"))).view()
            if "urls" in p:
                item["urls"] = p["urls"]
            view.append(item)
    api_url = next((p["url"] for p in view if p["name"] == "api" and p["running"]), None)
    env = dict(state.get("env", {})) if prefect_api else {}
    if env and api_url:
        env["JOBPIPES_API_URL"] = api_url  # the README's curl examples use it
    return {"parts": view, "env": env,
            "page_url": f"{api_url}/admin" if api_url else None,
            "docs_url": f"{api_url}/docs" if api_url else None,
            "token_source": TOKEN_ENV if os.environ.get(TOKEN_ENV) else str(TOKEN)}


def down(*, keep_server: bool = False) -> list[str]:
    """Stop every part this stack started (the Prefect server too unless ``keep_server``);
    returns the names of those that were running."""
    state = _read()
    stopped = [name for name in ("api", "serve", "sandboxes")
               if _stop_pid(state.get("parts", {}).get(name, {}).get("pid"))]
    STATE.unlink(missing_ok=True)
    (STACK_DIR / "sandboxes.json").unlink(missing_ok=True)
    if not keep_server and local_server.down():
        stopped.append("prefect")
    return stopped


def environment() -> dict[str, str]:
    """The environment that points a process at the running stack (empty when it is down)."""
    return dict(status()["env"])


def adopt_environment() -> None:
    """Take the running stack's environment into this process, for each variable not set
    already; nothing when ``PREFECT_API_URL`` points elsewhere (another server: another world)."""
    state = _read()
    env = state.get("env") or {}
    given = os.environ.get("PREFECT_API_URL")
    if not env or (given and given != env.get("PREFECT_API_URL")):
        return
    if not _alive(_server_pid()):
        return
    for key, value in env.items():
        os.environ.setdefault(key, value)
