"""Declare a job once (tests/toy/toy_job.py: one flow, one spec) and see it everywhere that
reads the registry, with no other edit: serve, deploy, prefect.yaml, the operations API's
catalog, config, overview (what the page shows: it lists whatever the overview returns) and
trigger routes, and the ``jobpipes`` command (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from prefect.settings import get_current_settings

from core.config import PROJECT_ROOT
from tests.conftest import _truncate
from tests.integration.test_ops_api import job_configurations_kept

TOKEN = "toy-token"


def test_a_job_declared_once_is_seen_by_every_reader_of_the_registry(app_env, pg_url):
    _truncate(pg_url)
    env = {**os.environ, **app_env, "JOBPIPES_JOB_MODULES": "tests.toy.toy_job", "BRAND_ADMIN_TOKEN": TOKEN,
           "PREFECT_API_URL": str(get_current_settings().api.url)}
    assert env["PREFECT_API_URL"].startswith("http"), env["PREFECT_API_URL"]
    with job_configurations_kept(pg_url):
        probe = subprocess.run([sys.executable, "-m", "tests.toy.probe"], cwd=PROJECT_ROOT, env=env,
                               capture_output=True, text=True, timeout=180)
    assert probe.returncode == 0, probe.stderr[-3000:]
    out = json.loads(probe.stdout)
    assert out["registry"] and out["families"][-1] == "toys"
    assert "toy-job" in out["serve"]
    [toy] = [d for d in yaml.safe_load(out["prefect_yaml"])["deployments"] if d["name"] == "toy-job"]
    assert toy["entrypoint"] == "tests/toy/toy_job.py:toy_job" and toy["concurrency_limit"] == 2
    assert toy["schedules"] == [{"cron": "*/30 * * * *", "timezone": "UTC", "active": True}]
    assert out["deploy"] == ["toy-job/toy-job: */30 * * * * (UTC) active"]
    assert out["jobs"] == [{"id": "toy-job", "family": "toys", "title": "Toy job", "deployment": "toy-job/toy-job"}]
    assert out["config"]["schedule"] == "*/30 * * * *" and out["config"]["config"] == {"greeting": "hello"}
    assert out["bad_config"]["detail"].startswith("config.greting")
    assert out["put"]["schedule"] == "5 * * * *" and out["put"]["config"] == {"greeting": "hi"}
    [row] = out["overview"]
    assert row["id"] == "toy-job" and row["schedule"] == "5 * * * *" and row["prefect"]["concurrency_limit"] == 2
    assert out["trigger"]["parameters"] == {"greeting": "yo"} and out["trigger"]["flow_run_id"]
    # The process that declared nothing more sees nothing more: the committed prefect.yaml has no toy.
    assert "toy-job" not in (PROJECT_ROOT / "prefect.yaml").read_text()

    # The jobpipes command, as a user types it, reads the same registry and control layer.
    with job_configurations_kept(pg_url):
        jobs = _jobpipes(env, "jobs", "--family", "toys", "--json")
        assert jobs.returncode == 0, jobs.stderr
        [row] = json.loads(jobs.stdout)["jobs"]
        assert row["id"] == "toy-job" and row["schedule"] == "*/30 * * * *"  # the probe's change was undone
        table = _jobpipes(env, "jobs", "--family", "toys")
        assert table.returncode == 0 and "toy-job" in table.stdout and "*/30 * * * * (UTC)" in table.stdout, table.stdout
        changed = _jobpipes(env, "config", "toy-job", "--schedule", "7 * * * *", "--set", "greeting=hey", "--json")
        assert changed.returncode == 0, changed.stderr
        assert json.loads(changed.stdout)["schedule"] == "7 * * * *"
        assert json.loads(changed.stdout)["config"] == {"greeting": "hey"}
        bad = _jobpipes(env, "config", "toy-job", "--set", "greting=x")
        assert bad.returncode == 2 and bad.stderr.startswith("config.greting"), (bad.returncode, bad.stderr)
        bad_param = _jobpipes(env, "run", "toy-job", "--param", "greting=yo")
        assert bad_param.returncode == 2 and bad_param.stderr.startswith("parameters.greting"), bad_param.stderr
        unknown = _jobpipes(env, "history", "no-such-job")
        assert unknown.returncode == 2 and unknown.stderr.startswith("job_id:"), unknown.stderr
        started = _jobpipes(env, "run", "toy-job", "--param", "greeting=yo", "--no-wait", "--json")
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["parameters"] == {"greeting": "yo"}


def _jobpipes(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "jobpipes"  # the console script of [project.scripts]
    return subprocess.run([str(command), *args], cwd=PROJECT_ROOT, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)
