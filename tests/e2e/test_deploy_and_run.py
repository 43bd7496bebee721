"""A user deploys and triggers profile_fetcher with the real Prefect CLI, offline.

What runs, all on this machine:

- ``prefect server start`` in a subprocess, with its own ``PREFECT_HOME`` on a free port;
- ``prefect work-pool create jobpipes --type process`` and ``prefect --no-prompt deploy --all``
  from the project root, exactly as README.md's "Deploying with a work pool and workers";
- ``prefect worker start --pool jobpipes --type process`` with the app's environment
  (PostgreSQL test database, the RapidAPI sandbox, a local object folder, the SMTP sink);
- ``prefect deployment run 'profile-fetcher/profile-fetcher' --param batch_size=4 --watch``.

Then the domain state (entries, profiles, objects, history, e-mail) and the Prefect state
(flow run, pull step, schedules) are checked.

Notes:

- ``prefect deploy --all`` ignores ``--pool`` (multi-deploy drops CLI options), so the pool
  is named ``jobpipes`` as in prefect.yaml; the server is fresh, so the name cannot clash.
- The scheduler service is off on this server. Schedules are still stored and checked as
  active, but no run is generated from them: otherwise a test crossing a quarter hour would
  see ``profile-fetcher`` and ``price-collection`` runs fired by the cron on our worker.
- Workers poll every second (``PREFECT_WORKER_QUERY_SECONDS=1``) instead of every 10 s.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule
from sqlalchemy import select

from core.brands.models import JobRun
from core.brands.repo import add_brand
from core.db import session_scope
from core.profiles.models import Profile, ProfileEntry
from core.runs.models import JobExecutionHistory
from tests.conftest import _truncate
from tests.e2e.conftest import (
    POOL,
    ROOT,
    RUN_TIMEOUT_S,
    TIME_BUDGET_S,
    PrefectServer,
    _cli,
    _prefect_cmd,
    _stop,
)
from tests.factories import seed_entries, urns


@dataclass
class Timings:
    start: float
    marks: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.monotonic)

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.marks[phase] = round(now - self._last, 1)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.monotonic() - self.start, 1)


def _read_prefect_state(api_url: str) -> tuple[dict[str, DeploymentResponse], list[FlowRun]]:
    """The two scheduled deployments and every flow run, from the server's API."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    names = ["profile-fetcher/profile-fetcher", "quota-reset/quota-reset"]
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return {name: client.read_deployment_by_name(name) for name in names}, client.read_flow_runs()


def test_deploy_with_the_cli_and_run_profile_fetcher_on_a_process_worker(
    prefect_server: PrefectServer, pg_url: str, rapidapi_sandbox: object, smtp_sink: object,
    collectors_sandbox: object, tmp_path: Path,
) -> None:
    timings = Timings(start=prefect_server.started)
    timings.marks["server start"] = prefect_server.startup_s
    cli_env = prefect_server.env
    _truncate(pg_url)
    rapidapi_sandbox.reset()  # type: ignore[attr-defined]
    smtp_sink.clear()  # type: ignore[attr-defined]
    names = urns(9, prefix="ACoAAE2eRun")
    seed_entries(pg_url, names)
    objects = tmp_path / "objects"
    worker_env = cli_env | {
        "DATABASE_URL": pg_url,
        "RAPIDAPI_BASE_URL": rapidapi_sandbox.url,  # type: ignore[attr-defined]
        "RAPIDAPI_KEY": "sandbox-key",
        "RAPIDAPI_RATE_LIMIT_BACKOFF_MS": "10",
        "STORAGE_URL": objects.as_uri(),
        "DATA_DIR": str(tmp_path / "data"),
        "SMTP_HOST": smtp_sink.host,  # type: ignore[attr-defined]
        "SMTP_PORT": str(smtp_sink.port),  # type: ignore[attr-defined]
        "NOTIFY_EMAIL_TO": "ops@example.com",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "OPENAI_BASE_URL": collectors_sandbox.url,  # type: ignore[attr-defined]
        "PERPLEXITY_BASE_URL": collectors_sandbox.url,  # type: ignore[attr-defined]
        "SERPAPI_BASE_URL": collectors_sandbox.url,  # type: ignore[attr-defined]
        "OPENAI_API_KEY": "sk-e2e", "PERPLEXITY_API_KEY": "pplx-e2e", "SERPAPI_API_KEY": "serp-e2e",
    }
    with session_scope(pg_url) as session:
        brand = add_brand(session, customer_id=uuid.uuid4(), name="Acme CRM", competitors=["Globex", "Hooli"],
                          topics={"crm": ["best CRM for a small business", "cheapest CRM"]})
        brand_params = {"brand_id": str(brand.id), "customer_id": str(brand.customer_id),
                        "job_type": "data_collection_and_scoring",
                        "metadata": {"collectors": ["chatgpt", "perplexity"], "parallel": True}}
    timings.mark("seed")

    _cli(["work-pool", "create", POOL, "--type", "process"], cli_env, tmp_path)
    timings.mark("work-pool create")
    deploy = _cli(["--no-prompt", "deploy", "--all"], cli_env, tmp_path, timeout=150)
    timings.mark("deploy --all")

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            _prefect_cmd("worker", "start", "--pool", POOL, "--type", "process"),
            cwd=tmp_path, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            run = _cli(["deployment", "run", "profile-fetcher/profile-fetcher",
                        "--param", "batch_size=4", "--watch", "--watch-timeout", str(RUN_TIMEOUT_S - 10)],
                       cli_env, tmp_path, timeout=RUN_TIMEOUT_S)
            timings.mark("deployment run --watch")
            # Seed 001 and 003 jobs from the same CLI: the smurf analyzer (no API calls) and a
            # brand's collection and scoring with JSON parameters.
            smurf = _cli(["deployment", "run", "smurf-analyzer/smurf-analyzer", "--watch",
                          "--watch-timeout", str(RUN_TIMEOUT_S - 10)], cli_env, tmp_path, timeout=RUN_TIMEOUT_S)
            brand_run = _cli(["deployment", "run", "brand-job/brand-job", "--params", json.dumps(brand_params),
                              "--watch", "--watch-timeout", str(RUN_TIMEOUT_S - 10)],
                             cli_env, tmp_path, timeout=RUN_TIMEOUT_S)
            timings.mark("smurf-analyzer + brand-job runs")
        finally:
            _stop(worker)
    timings.mark("worker stop")

    match = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert match, run.stdout
    flow_run_id = match.group(1)
    for out in (run, smurf, brand_run):
        assert "finished successfully in 'Completed'" in out.stdout, out.stdout

    # Domain state: every entry fetched, objects on disk, one history row, one e-mail.
    with session_scope(pg_url) as session:
        entries = session.execute(select(ProfileEntry)).scalars().all()
        profiles = session.execute(select(Profile)).scalars().all()
        all_history = session.execute(select(JobExecutionHistory)).scalars().all()
        [brand_job_run] = session.execute(select(JobRun)).scalars().all()
    history = [h for h in all_history if h.job_name == "profile_fetcher"]
    assert sorted(h.job_name for h in all_history) == [
        "brand_data_collection_and_scoring", "profile_fetcher", "smurf_analyzer"]
    assert brand_job_run.status == "completed", brand_job_run.error_message
    assert brand_job_run.metrics["data_collection"]["successful_executions"] == 4
    assert brand_job_run.metrics["scoring"]["answers_position_scored"] == 4
    assert sorted(e.urn for e in entries) == sorted(names)
    assert {e.status for e in entries} == {"COMPLETED"}, [(e.urn, e.status, e.error_message) for e in entries]
    assert {p.urn for p in profiles} == set(names)
    for p in profiles:
        assert (objects / p.raw_s3_key).is_file(), p.raw_s3_key
        assert (objects / p.cleaned_s3_key).is_file(), p.cleaned_s3_key
        assert json.loads((objects / p.cleaned_s3_key).read_text())["urn"] == p.urn
    assert len(history) == 1, [(h.job_name, h.status, h.flow_run_id) for h in history]
    [h] = history
    assert (h.job_name, h.status, h.total_processed, h.successful_count, h.failed_count) == (
        "profile_fetcher", "SUCCESS", 9, 9, 0)
    assert h.metrics["batches"] == math.ceil(9 / 4) and h.metrics["batch_size"] == 4
    assert h.flow_run_id == flow_run_id
    messages = [m for m in smtp_sink.messages if "profile_fetcher" in m["Subject"]]  # type: ignore[attr-defined]
    assert len(messages) == 1, [m["Subject"] for m in messages]
    assert "profile_fetcher SUCCESS" in messages[0]["Subject"]
    assert messages[0]["To"] == "ops@example.com"

    # Prefect state: the run, where the worker took the code from, the schedules.
    deployments, flow_runs = _read_prefect_state(cli_env["PREFECT_API_URL"])
    fetcher, reset = deployments["profile-fetcher/profile-fetcher"], deployments["quota-reset/quota-reset"]
    # Only our runs (no schedule fired): the fetcher, the analyzer, brand-job and its two subflows.
    assert sorted(r.name.split("-")[0] for r in flow_runs if r.deployment_id is None) == [
        "collect", "data", "scoring"], [r.name for r in flow_runs]
    [flow_run] = [r for r in flow_runs if r.deployment_id == fetcher.id]
    assert str(flow_run.id) == flow_run_id and flow_run.deployment_id == fetcher.id
    assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
    assert flow_run.parameters == {"batch_size": 4}
    # prefect.yaml's pull steps: a clone of JOBPIPES_GIT_URL when the worker has one, else the
    # directory `prefect deploy` ran in (recorded by the build step): here, this checkout.
    assert fetcher.pull_steps is not None
    [fetch, chdir] = fetcher.pull_steps
    script = fetch["prefect.deployments.steps.run_shell_script"]["script"]
    assert f'echo "{ROOT}"' in script and "$JOBPIPES_GIT_URL" in script, script
    assert chdir == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ fetch-code.stdout }}"}}
    assert "profile-fetcher" in deploy.stdout
    for deployment, cron in ((fetcher, "*/15 * * * *"), (reset, "0 0 1 * *")):
        assert deployment.work_pool_name == POOL
        [schedule] = deployment.schedules
        assert isinstance(schedule.schedule, CronSchedule), schedule.schedule
        assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (cron, "UTC", True)
    assert fetcher.global_concurrency_limit is not None and fetcher.global_concurrency_limit.limit == 4

    timings.mark("assertions")
    print(f"\ne2e timings (s): {timings.marks}; total from server start {timings.total}")
    assert timings.total < TIME_BUDGET_S, timings.marks
