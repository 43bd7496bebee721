"""The Prefect API goes away while a run works (issue 19 item 2): the run's history row and its
e-mail do not depend on it. A real ``prefect server start`` is killed mid-run and started
again on the same port and database; the next run finishes what is left and publishes the
artifact the outage kept from the first run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.config import PROJECT_ROOT
from tests.conftest import free_port
from tests.e2e.conftest import _clean_env, _prefect_cmd, _stop, prefect_database, wait_healthy
from tests.factories import entry_rows, history_rows, seed_entries, urns

RUN = "import asyncio; from flows.profiles import profile_fetcher; print(asyncio.run(profile_fetcher(batch_size=5)))"


def _server(tmp_path: Path, port: int, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = _clean_env() | {"PREFECT_API_DATABASE_CONNECTION_URL": database_url,
                          "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_UI_ENABLED": "false",
                          "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                          "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    with log.open("ab") as out:
        proc = subprocess.Popen(_prefect_cmd("server", "start", "--host", "127.0.0.1", "--port", str(port)),
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    wait_healthy(f"http://127.0.0.1:{port}/api", log, proc)
    return proc


def test_a_run_keeps_its_history_row_and_email_when_the_prefect_api_dies(app_env, rapidapi_sandbox, smtp_sink,
                                                                          tmp_path):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(60))
    rapidapi_sandbox.update_knobs(latency_ms=300)  # 12 batches of 5: the run lasts well past the kill
    port, log = free_port(), tmp_path / "server.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, **app_env,
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "RAPIDAPI_CONCURRENCY": "2",
           "RAPIDAPI_BATCHES_IN_FLIGHT": "1", "PREFECT_CLIENT_MAX_RETRIES": "2"}
    with prefect_database() as database_url:
        server = _server(tmp_path, port, database_url, log)
        run = subprocess.Popen([sys.executable, "-c", RUN], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 120
            while sum(e.status == "COMPLETED" for e in entry_rows(url).values()) < 5:
                assert time.monotonic() < deadline and run.poll() is None, run.stdout.read() if run.stdout else ""
                time.sleep(0.2)
            os.killpg(server.pid, signal.SIGKILL)  # the Prefect API is gone mid-run
            server.wait(timeout=30)
            output, _ = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
        # The run ended without Prefect: its history row is written and its e-mail sent.
        [row] = history_rows(url)
        assert row.job_name == "profile_fetcher" and row.total_processed >= 5, output[-3000:]
        mails = [m for m in smtp_sink.messages if "profile_fetcher" in m["Subject"]]  # type: ignore[attr-defined]
        assert len(mails) == 1, output[-3000:]
        assert not [e for e in entry_rows(url).values() if e.status == "FETCHING"]  # nothing left claimed
        assert row.artifact_pending and not row.email_pending  # the artifact is left for a later run

        # Prefect is back (same port, same database): the next run finishes what is left.
        server = _server(tmp_path, port, database_url, log)
        try:
            rapidapi_sandbox.update_knobs(latency_ms=0)
            again = subprocess.run([sys.executable, "-c", RUN], cwd=PROJECT_ROOT, env=env, capture_output=True,
                                   text=True, timeout=300)
            assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
            # ...and publishes the artifact the outage kept from the first run, on that run.
            found = httpx.post(f"http://127.0.0.1:{port}/api/artifacts/filter", timeout=30, json={
                "artifacts": {"flow_run_id": {"any_": [row.flow_run_id]}}}).json()
            [result] = [a for a in found if a["key"]]  # beside the run's progress bar (no key)
            assert result["key"] == "profile-fetcher", found
            table = result["data"]
            table = json.loads(table) if isinstance(table, str) else table
            assert {"metric": "status", "value": row.status} in table, table
        finally:
            _stop(server)
    statuses = {e.status for e in entry_rows(url).values()}
    assert statuses == {"COMPLETED"}, statuses
    assert [r.status for r in history_rows(url)][-1] == "SUCCESS"
    assert not [r.id for r in history_rows(url) if r.artifact_pending or r.email_pending]
