"""``python -m deployments.worker.task_worker`` refuses bad input with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    return subprocess.run([sys.executable, "-m", "deployments.worker.task_worker", *args], cwd=ROOT,
                          env=clean | env, capture_output=True, text=True, timeout=120)


def test_without_a_prefect_api_url_it_says_so_and_starts_no_temporary_server(tmp_path: Path) -> None:
    done = _run(PREFECT_HOME=str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "PREFECT_API_URL is not set" in done.stderr and "jobpipes env" in done.stderr
    assert "Traceback" not in done.stderr and "temporary server" not in done.stdout + done.stderr


def test_a_limit_below_one_is_refused() -> None:
    done = _run("--limit", "0", PREFECT_API_URL="http://127.0.0.1:9/api")
    assert done.returncode == 2 and "--limit must be at least 1, got 0" in done.stderr
