"""The operations catalog agrees with prefect.yaml: every fixed job is a deployment there,
with the same concurrency limit and a default schedule."""

from __future__ import annotations

import yaml

from core.config import PROJECT_ROOT
from deployments.control.catalog import FIXED_JOBS


def test_fixed_jobs_match_prefect_yaml():
    spec = {d["name"]: d for d in yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())["deployments"]}
    for job in FIXED_JOBS:
        deployment = spec[job.id]
        assert job.flow.name == job.id
        assert deployment.get("concurrency_limit") == job.concurrency, job.id
        assert len(deployment["schedules"]) == 1, job.id
