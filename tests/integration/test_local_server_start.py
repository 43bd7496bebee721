"""The local Prefect server's start-up wait (issue 20 item 5): it waits while the server makes
progress, and a server that exits or stalls is stopped, with its log's last lines in the error.
Real processes stand in for a failing server; the healthy path is every e2e test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from deployments.dev import local_server


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(local_server, "STATE_DIR", tmp_path)
    monkeypatch.setattr(local_server, "STATE", tmp_path / "server.json")
    monkeypatch.setattr(local_server, "LOG", tmp_path / "server.log")
    return tmp_path


def _start(script: str) -> subprocess.Popen[bytes]:
    with local_server.LOG.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    local_server.STATE.write_text(json.dumps({"pid": proc.pid, "api_url": "http://127.0.0.1:9/api"}))
    return proc


def test_a_server_that_exits_is_reported_with_the_last_lines_of_its_log(state_dir):
    proc = _start("import sys, time; print('Migrating database', flush=True); time.sleep(1); "
                  "print('ERROR: address already in use', flush=True); sys.exit(3)")

    with pytest.raises(RuntimeError) as failed:
        local_server._wait_until_healthy(proc, "http://127.0.0.1:9/api", 0)

    message = str(failed.value)
    assert "exited with code 3" in message and "address already in use" in message and "Migrating" in message
    assert not local_server.STATE.exists()  # what it started is forgotten (and stopped)


def test_a_slow_server_that_keeps_logging_is_waited_for_and_a_stalled_one_is_stopped(state_dir, monkeypatch):
    monkeypatch.setattr(local_server, "STALL_TIMEOUT_S", 2)
    # Logs for 4 s (twice the stall limit: progress keeps the wait going), then hangs silently.
    proc = _start("import time\nfor i in range(8):\n    print('still starting', i, flush=True); time.sleep(0.5)\n"
                  "time.sleep(600)")
    started = time.monotonic()

    with pytest.raises(RuntimeError, match="made no progress for 2 s"):
        local_server._wait_until_healthy(proc, "http://127.0.0.1:9/api", 0)

    assert time.monotonic() - started >= 4  # not given up while the log grew
    proc.wait(timeout=30)  # stopped by the wait
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
