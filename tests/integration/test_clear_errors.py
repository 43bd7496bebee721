"""The usual set-up mistakes give the one line that names them (issue 20 item 6), as a user
meets them: the command in a subprocess, a real database that is down, a real worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import text

from core.config import PROJECT_ROOT
from core.db import session_scope
from core.errors import ConfigError
from core.settings import load_settings, unknown_environment

JOBPIPES = str(Path(sys.executable).parent / "jobpipes")


def _jobpipes(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBPIPES, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_mistyped_variable_of_ours_is_reported_with_the_closest_key(app_env):
    assert unknown_environment({"CRON_BATCHSIZE": "abc", "PATH": "/bin", "CRON_BATCH_SIZE": "5",
                                "RIOT_APIKEY": "x", "DATA_DIRECTORY": "/tmp"}) == [
        "CRON_BATCHSIZE: not a setting, ignored; did you mean CRON_BATCH_SIZE?",
        "RIOT_APIKEY: not a setting, ignored; did you mean RIOT_API_KEY?"]

    listed = _jobpipes({**os.environ, **app_env, "CRON_BATCHSIZE": "abc"}, "queue", "list", "--json")

    assert listed.returncode == 0, listed.stderr
    assert "CRON_BATCHSIZE: not a setting, ignored; did you mean CRON_BATCH_SIZE?" in listed.stderr


def test_a_yaml_typo_says_did_you_mean(tmp_path, monkeypatch):
    config = tmp_path / "config.yml"
    config.write_text("rapidapi:\n  baseUrll: http://127.0.0.1:8081\ncron:\n  batchSize: 5\n")
    monkeypatch.setenv("CONFIG_FILE", str(config))

    with pytest.raises(ConfigError, match=r"rapidapi\.baseUrll: unknown configuration key; did you mean "
                                          r"rapidapi\.baseUrl\?"):
        load_settings()


def test_an_unsupported_database_url_names_the_supported_ones_without_the_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://app:s3cret@db.example/jobs")

    with pytest.raises(ConfigError) as bad:
        load_settings()

    message = str(bad.value)
    assert "unsupported database 'mysql'" in message and "postgresql://" in message and "sqlite:///" in message
    assert "s3cret" not in message


def test_a_database_that_is_down_is_one_line_naming_host_port_and_database(app_env, tmp_path):
    env = {**os.environ, **app_env, "DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:1/jobpipes_gone",
           "DATA_DIR": str(tmp_path)}

    listed = _jobpipes(env, "queue", "list")

    assert listed.returncode == 1
    lines = [line for line in listed.stderr.splitlines() if line.strip()]
    assert lines == ["database unreachable: postgresql at 127.0.0.1:1, database 'jobpipes_gone': Connection refused"], \
        listed.stderr
    assert "s3cret" not in listed.stderr and "Traceback" not in listed.stderr


def test_the_jobs_worker_says_what_it_runs_and_warns_once_about_an_unregistered_type(app_env, tmp_path):
    url = app_env["DATABASE_URL"]
    with session_scope(url) as session:  # as another system would write it, for a type nobody handles
        session.execute(text("INSERT INTO jobs (job_type, job_data) VALUES ('billing.jobs.InvoiceJob', '{}')"))
    log = tmp_path / "worker.log"
    env = {**os.environ, **app_env, "PREFECT_API_URL": PREFECT_API_URL.value(),
           "JOBS_MODULES": "core.jobqueue.examples", "JOBS_POLL_INTERVAL_SECONDS": "0.2"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deployments.worker.jobs_worker", "--name", "w-errors"],
                                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "InvoiceJob are Pending" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(2)  # ten more polls: still one warning
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    written = log.read_text()
    assert "worker w-errors started: job types BuildReportJob (job, limit 5)" in written, written[-3000:]
    assert "SendEmailJob (job, limit 5)" in written
    assert "maxParallel 10" in written and "database postgresql" in written
    assert written.count("jobs of type billing.jobs.InvoiceJob are Pending, but no handler is registered") == 1
