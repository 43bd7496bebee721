"""infra/docker-compose.yml runs a jobs worker with every setting it needs, all real names."""

from __future__ import annotations

import re

import yaml

from core.config import PROJECT_ROOT
from core.settings import ENV_KEYS


def test_compose_has_a_jobs_worker_service_with_its_settings():
    compose = yaml.safe_load((PROJECT_ROOT / "infra" / "docker-compose.yml").read_text())
    worker = compose["services"]["jobs-worker"]
    assert "python -m deployments.worker.jobs_worker" in worker["command"]
    env = worker["environment"]
    needed = {"PREFECT_API_URL", "DATABASE_URL", "JOBS_MODULES", "JOBS_HEARTBEAT_SECONDS", "JOBS_MISSED_HEARTBEATS",
              "JOBS_ORPHANED_JOBS_CHECK_INTERVAL", "JOBS_ORPHANED_JOB_THRESHOLD", "JOBS_SCHEDULED_JOBS_CHECK_INTERVAL",
              "SMTP_HOST", "NOTIFY_EMAIL_FROM"}
    assert needed <= set(env)
    assert {k for k in env if not k.startswith("PREFECT_")} <= set(ENV_KEYS)  # no misspelt variable
    assert "JOBS_WORKER_NAME" not in env  # replicas are named by their hostnames
    assert set(worker["depends_on"]) >= {"postgres", "prefect-server"}
    grace = float(re.search(r"--grace (\d+)", worker["command"]).group(1))
    assert float(worker["stop_grace_period"].rstrip("s")) > grace  # in-flight jobs get to finish
