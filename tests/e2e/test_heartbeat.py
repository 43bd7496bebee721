"""The heartbeat: schedules set through the config tables fire by Prefect's own scheduler,
on each way the README runs the product, and a schedule that does not fire raises the alarm.

- The long-lived local server of ``make demo`` (``python -m deployments.dev.local_server up``)
  with ``python -m deployments.serve``: every one of the nine fixed jobs gets a daily cron at a
  minute or two ahead in Asia/Kolkata through ``PUT /api/v1/jobs/{id}/config``; each fires at
  that minute, created by the scheduler (an auto-scheduled run with the scheduler's idempotency
  key, never by the test), completes, is the overview's last run, and switches off.
- ``prefect server start`` with a work pool and a process worker after ``prefect deploy
  --all`` + ``python -m deployments.deploy``: one job's schedule fires on the worker; then the
  worker stops, the next run stays Late, and Prefect's late-run automation makes the
  operations API e-mail the alarm (Prefect's watchdog automation calls its check).

The scheduler's loops are shortened with Prefect's own settings (``FAST_SCHEDULER_ENV``), so
a test waits for the next whole minute, not for the scheduler. Any ERROR in a Prefect
server's log fails the test. Each test prints, per job, the seconds from the fire time to
the run's completion, and the alarm's delay.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL, temporary_settings

from core.crypto.models import Asset
from core.db import session_scope
from deployments.control.catalog import FIXED_JOBS
from tests.conftest import _truncate, free_port
from tests.e2e.conftest import (
    FAST_SCHEDULER_ENV,
    POOL,
    ROOT,
    PrefectServer,
    _clean_env,
    _cli,
    _prefect_cmd,
    _stop,
    _tail,
    assert_server_healthy,
)
from tests.integration.test_ops_api import job_configurations_kept

TOKEN = "heartbeat-token"
EVERY_MINUTE = "* * * * *"
FIRE_ZONE = "Asia/Kolkata"  # UTC+05:30
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _configs_restored(pg_url: str) -> Iterator[None]:
    """The tests change every job's row through the API; ``job_configurations`` (seeded by the
    migrations, not emptied between tests) is put back for the tests after these."""
    with job_configurations_kept(pg_url):
        yield


def _app_env(tmp: Path, pg_url: str, rapidapi: Any, coingecko: Any, riot: Any, smtp: Any) -> dict[str, str]:
    """What a flow run, the serve process and the operations API need (sandboxes, SMTP sink)."""
    return {
        "DATABASE_URL": pg_url, "DATA_DIR": str(tmp / "data"), "STORAGE_URL": (tmp / "objects").as_uri(),
        "RAPIDAPI_BASE_URL": rapidapi.url, "RAPIDAPI_KEY": "sandbox-key",
        "COINGECKO_BASE_URL": coingecko.url, "COINGECKO_API_KEY": "sandbox-cg-key",
        "COINGECKO_CALLS_PER_MINUTE": "6000",
        "RIOT_BASE_URL_TEMPLATE": riot.url + "/{route}", "RIOT_API_KEY": "RGAPI-sandbox",
        "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "NOTIFY_EMAIL_TO": "ops@example.com",
        "BRAND_ADMIN_TOKEN": TOKEN, "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        _stop(proc)


@contextmanager
def _ops_api(env: dict[str, str], tmp: Path) -> Iterator[str]:
    """The operations API as the README starts it (uvicorn), on a free port."""
    port = free_port()
    log = tmp / "ops-api.log"
    cmd = [sys.executable, "-m", "uvicorn", "deployments.api.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with _process(cmd, env, log) as proc:
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: _get_ok(f"{url}/docs"), 90, "the operations API to answer", [log], proc)
        yield url


def _get_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(probe: Callable[[], T | None | bool], timeout: float, what: str, logs: list[Path],
          proc: subprocess.Popen[bytes] | None = None, poll: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value  # type: ignore[return-value]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited while waiting for {what}\n" + "\n".join(_tail(p) for p in logs))
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s\n" + "\n".join(_tail(p, 40) for p in logs))
        time.sleep(poll)


@contextmanager
def _prefect(api_url: str) -> Iterator[SyncPrefectClient]:
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def _scheduler_run(client: SyncPrefectClient, deployment_id: Any, after: datetime) -> FlowRun | None:
    """The first run Prefect's scheduler created for the deployment with a start after ``after``."""
    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                                 sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=50)
    return next((r for r in runs if r.auto_scheduled and (r.idempotency_key or "").startswith("scheduled ")
                 and r.expected_start_time and r.expected_start_time > after), None)


def _put_config(ops: str, job_id: str, **fields: Any) -> dict[str, Any]:
    t0 = time.monotonic()
    response = httpx.put(f"{ops}/api/v1/jobs/{job_id}/config", json=fields,
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    if (took := time.monotonic() - t0) > 5:
        print(f"\nslow PUT {job_id} config {fields}: {took:.1f} s")
    assert response.status_code == 200, (job_id, response.text)
    return dict(response.json())


def _overview(ops: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{ops}/api/v1/jobs/status/overview", headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=60)
    assert response.status_code == 200, response.text
    return {j["id"]: j for j in response.json()["jobs"]}


def _once_a_day_soon(now: datetime, zone: str) -> tuple[datetime, str]:
    """The first whole minute at least 50 s after ``now`` (time for nine PUTs and the
    scheduler's loop) and a daily cron firing at that minute in ``zone``."""
    fire_at = (now + timedelta(seconds=110)).replace(second=0, microsecond=0)
    local = fire_at.astimezone(ZoneInfo(zone))
    return fire_at, f"{local.minute} {local.hour} * * *"


def _clear_of_a_whole_minute() -> None:
    """Sleep until the minute is 2-25 s old. The jobs' old schedules (every 2, 5, 10 or 15
    minutes) fire on whole minutes, and serve takes a run up to 10 s before its time (Prefect's
    runner prefetch: it is Pending then, and a schedule change no longer withdraws it): the
    nine changes must be made well clear of that."""
    now = datetime.now(UTC)
    into = now.second + now.microsecond / 1e6
    if not 2 <= into <= 25:
        time.sleep((62 - into) % 60)


def _seconds(a: datetime | None, b: datetime | None) -> float:
    assert a is not None and b is not None
    return round((b - a).total_seconds(), 1)


def test_every_schedule_fires_on_the_local_server_with_serve(
    tmp_path: Path, pg_url: str, rapidapi_sandbox: Any, coingecko_sandbox: Any, riot_api_sandbox: Any,
    smtp_sink: Any,
) -> None:
    _truncate(pg_url)
    rapidapi_sandbox.reset()
    coingecko_sandbox.reset()
    # A tracked coin: price-collection then does not run top-coins-collection as its dependency
    # (that subflow's history row, a second top-coins run, would be the overview's last run).
    with session_scope(pg_url) as session:
        session.add(Asset(coingecko_id="bitcoin", symbol="btc", name="Bitcoin", market_cap_rank=1))
    env = _clean_env() | _app_env(tmp_path, pg_url, rapidapi_sandbox, coingecko_sandbox, riot_api_sandbox,
                                  smtp_sink) | FAST_SCHEDULER_ENV
    state = tmp_path / "data" / "prefect"
    up = subprocess.run([sys.executable, "-m", "deployments.dev.local_server", "up"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=150)
    try:
        assert up.returncode == 0, up.stdout + up.stderr + _tail(state / "server.log")
        [api_url] = re.findall(r"export PREFECT_API_URL=(\S+)", up.stdout)
        env["PREFECT_API_URL"] = api_url
        with _process([sys.executable, "-m", "deployments.serve"], env, tmp_path / "serve.log") as serve, \
                _ops_api(env, tmp_path) as ops, _prefect(api_url) as client:
            def served() -> bool:  # serve registers its deployments one by one
                return {job.id for job in FIXED_JOBS} <= {d.name for d in client.read_deployments()}

            _wait(served, 120, "served deployments", [tmp_path / "serve.log"], serve)
            deployments = {job.id: client.read_deployment_by_name(job.deployment) for job in FIXED_JOBS}
            _clear_of_a_whole_minute()
            changed = datetime.now(UTC)
            # Once a day, at a whole minute a minute or two ahead, in a zone half an hour off UTC:
            # each job fires exactly once, so no next minute's nine runs load the server's SQLite
            # while the test reads and switches the jobs off.
            fire_at, cron = _once_a_day_soon(changed, FIRE_ZONE)
            for job in FIXED_JOBS:
                stored = _put_config(ops, job.id, schedule=cron, timezone=FIRE_ZONE, active=True)
                assert (stored["schedule"], stored["timezone"]) == (cron, FIRE_ZONE), stored

            # Prefect's scheduler creates each job's run within seconds of the change, at the
            # cron's time in the job's zone; the overview's next run is that run, not a time
            # computed from the cron. Runs of the old schedule that the scheduler inserted just
            # after the change (it reads and inserts in two transactions) are dropped within
            # seconds (prefect_api.StaleRuns): the first run after the change is the new one.
            seen: dict[str, Any] = {}

            def all_scheduled() -> dict[str, FlowRun] | None:
                found = {j: _scheduler_run(client, d.id, changed) for j, d in deployments.items()}
                seen.update({j: r and (str(r.expected_start_time), r.state_name, str(r.created))
                             for j, r in found.items()})
                return found if all(r is not None and r.expected_start_time == fire_at  # type: ignore[return-value]
                                    for r in found.values()) else None

            try:
                first = _wait(all_scheduled, 60, f"scheduled run of every job at {fire_at}",
                              [state / "server.log", tmp_path / "ops-api.log"])
            except AssertionError as exc:  # which job's first run after the change is which
                raise AssertionError(f"changed at {changed}, first runs after it: {seen}") from exc
            view = _overview(ops)
            for job_id, run in first.items():
                assert run.expected_start_time == fire_at, (job_id, run.expected_start_time, fire_at)
                assert view[job_id]["next_run"] is not None, view[job_id]
                assert datetime.fromisoformat(view[job_id]["next_run"]) == fire_at, view[job_id]
                assert view[job_id]["alarms"] == [] and view[job_id]["drift"] == [], view[job_id]

            def all_final() -> dict[str, FlowRun] | None:
                runs = {j: client.read_flow_run(r.id) for j, r in first.items()}
                return runs if all(r.state and r.state.is_final() for r in runs.values()) else None

            wait_s = (fire_at - datetime.now(UTC)).total_seconds()
            done = _wait(all_final, wait_s + 150, "completion of every job's scheduled run",
                         [tmp_path / "serve.log", state / "server.log"], serve)
            timings = {j: _seconds(r.expected_start_time, r.end_time) for j, r in done.items()}
            print(f"\nserve on the local server: fire time -> completion (s): {timings}")
            for job_id, run in done.items():
                assert run.state is not None and run.state.is_completed(), (job_id, run.state, _tail(tmp_path / "serve.log"))
            view = _overview(ops)
            for job_id, run in done.items():
                last = view[job_id]["last_run"]
                assert last is not None and last["flow_run_id"] == str(run.id), (job_id, last)
                assert datetime.fromisoformat(view[job_id]["next_run"]) > fire_at, view[job_id]  # tomorrow's
            for job in FIXED_JOBS:
                _put_config(ops, job.id, active=False)
            view = _overview(ops)
            assert all(view[job.id]["next_run"] is None for job in FIXED_JOBS), view  # inactive now
    finally:
        subprocess.run([sys.executable, "-m", "deployments.dev.local_server", "down"], cwd=ROOT, env=env,
                       capture_output=True, timeout=60)
    assert_server_healthy(state / "server.log")


def test_a_schedule_fires_on_a_worker_and_a_stopped_worker_raises_the_alarm(
    scheduling_prefect_server: PrefectServer, tmp_path: Path, pg_url: str, rapidapi_sandbox: Any,
    coingecko_sandbox: Any, riot_api_sandbox: Any, smtp_sink: Any,
) -> None:
    _truncate(pg_url)
    smtp_sink.clear()
    server = scheduling_prefect_server
    env = server.env | _app_env(tmp_path, pg_url, rapidapi_sandbox, coingecko_sandbox, riot_api_sandbox, smtp_sink)
    logs = [tmp_path / "worker.log", server.log_path, tmp_path / "ops-api.log"]
    _cli(["work-pool", "create", POOL, "--type", "process"], env, tmp_path)
    _cli(["--no-prompt", "deploy", "--all"], env, tmp_path, timeout=150)
    with _ops_api(env | {"ALERTS_LATE_AFTER_SECONDS": "10"}, tmp_path) as ops:
        env |= {"ALERTS_WEBHOOK_URL": f"{ops}/api/v1/alerts/check", "ALERTS_LATE_AFTER_SECONDS": "10",
                "ALERTS_CHECK_EVERY_SECONDS": "10"}
        deploy = subprocess.run([sys.executable, "-m", "deployments.deploy"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert "jobpipes: alarm watchdog (every 10 s)" in deploy.stdout, deploy.stdout
        job = "quota-reset"
        for other in FIXED_JOBS:  # one job on this worker: the others are switched off as a user would
            if other.id != job:
                _put_config(ops, other.id, active=False)
        with _prefect(env["PREFECT_API_URL"]) as client:
            deployment = client.read_deployment_by_name(f"{job}/{job}")
            with _process(_prefect_cmd("worker", "start", "--pool", POOL, "--type", "process"), env,
                          tmp_path / "worker.log", cwd=tmp_path):
                changed = datetime.now(UTC)
                _put_config(ops, job, schedule=EVERY_MINUTE, active=True)
                run = _wait(lambda: _scheduler_run(client, deployment.id, changed), 60,
                            "scheduled run from Prefect's scheduler", logs)
                done = _wait(lambda: (r := client.read_flow_run(run.id)).state.is_final() and r, 150,  # type: ignore[union-attr]
                             f"completion of the scheduled run {run.id}", logs)
                assert done.state is not None and done.state.is_completed(), (done.state, _tail(tmp_path / "worker.log"))
                fired_to_done = _seconds(done.expected_start_time, done.end_time)
                view = _overview(ops)[job]
                assert view["last_run"] is not None and view["last_run"]["flow_run_id"] == str(done.id), view
                assert view["last_run"]["status"] == "SUCCESS" and view["alarms"] == [], view
                [upcoming] = [r for r in [_scheduler_run(client, deployment.id, done.expected_start_time)] if r]
                assert datetime.fromisoformat(view["next_run"]) >= upcoming.expected_start_time
            # The worker is gone: the next run is never picked up, goes Late, and the alarm arrives.
            late = upcoming

            def alarm_mail() -> Any:
                return next((m for m in smtp_sink.messages if f"ALARM {job}" in m["Subject"]), None)

            mail = _wait(alarm_mail, 150, f"alarm e-mail for {job}", logs)
            mailed_at = datetime.now(UTC)
            assert "late_run" in mail["Subject"] and mail["To"] == "ops@example.com"
            assert TOKEN not in mail.as_string()
            state = client.read_flow_run(late.id).state
            assert state is not None and state.name == "Late", state
            alarm_delay = _seconds(late.expected_start_time, mailed_at)
            view = _overview(ops)[job]
            assert view["health"] == "alarm" and [a["kind"] for a in view["alarms"]] == ["late_run"], view
            alerts = httpx.get(f"{ops}/api/v1/alerts?open=true", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            assert [(a["job_id"], a["kind"]) for a in alerts] == [(job, "late_run")], alerts
            _put_config(ops, job, active=False)
    print(f"\nworker: fire time -> completion {fired_to_done} s; late run's start time -> alarm e-mail "
          f"{alarm_delay} s (late after 10 s)")


def test_a_stopped_scheduler_raises_the_alarm_for_an_active_schedule(
    prefect_server: PrefectServer, tmp_path: Path, pg_url: str, rapidapi_sandbox: Any, coingecko_sandbox: Any,
    riot_api_sandbox: Any, smtp_sink: Any,
) -> None:
    """The server's scheduler service is off (``PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED=false``):
    the deployment's schedule is active, yet no run is ever created; the watchdog's check
    e-mails the alarm, and the overview marks the job with the reason."""
    _truncate(pg_url)
    smtp_sink.clear()
    env = prefect_server.env | _app_env(tmp_path, pg_url, rapidapi_sandbox, coingecko_sandbox, riot_api_sandbox,
                                        smtp_sink) | {"ALERTS_NO_SCHEDULE_GRACE_SECONDS": "5"}
    job = "quota-reset"
    _cli(["work-pool", "create", POOL, "--type", "process"], env, tmp_path)
    _cli(["--no-prompt", "deploy", "--name", job], env, tmp_path, timeout=150)
    with _ops_api(env, tmp_path) as ops:
        env |= {"ALERTS_WEBHOOK_URL": f"{ops}/api/v1/alerts/check", "ALERTS_CHECK_EVERY_SECONDS": "10"}
        deploy = subprocess.run([sys.executable, "-m", "deployments.deploy"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        deployed = datetime.now(UTC)
        _put_config(ops, job, schedule=EVERY_MINUTE)

        def alarm_mail() -> Any:
            return next((m for m in smtp_sink.messages if f"ALARM {job}" in m["Subject"]), None)

        mail = _wait(alarm_mail, 120, f"alarm e-mail for {job}", [prefect_server.log_path, tmp_path / "ops-api.log"])
        delay = _seconds(deployed, datetime.now(UTC))
        assert "no_scheduled_run" in mail["Subject"], mail["Subject"]
        assert "scheduler" in mail.get_content() and "'* * * * *'" in mail.get_content(), mail.get_content()
        view = _overview(ops)[job]
        assert view["next_run"] is None and view["health"] == "alarm", view
        assert [a["kind"] for a in view["alarms"]] == ["no_scheduled_run"], view["alarms"]
        assert any("no scheduled run in Prefect" in d for d in view["drift"]), view["drift"]
        with _prefect(env["PREFECT_API_URL"]) as client:
            [schedule] = client.read_deployment_by_name(f"{job}/{job}").schedules
            assert schedule.active and schedule.schedule.cron == EVERY_MINUTE  # type: ignore[union-attr]
    print(f"\nscheduler stopped: deploy -> alarm e-mail {delay} s (grace 5 s, watchdog every 10 s)")
