"""The fault matrix of issue 19: a profile-fetcher run of 300 entries (batch 10, 50 ms
provider latency) meets one fault of a real component mid-run, and then the next run goes.

Rows (each its own test, side by side under pytest-xdist, each with its own components):
a private PostgreSQL stopped and started; S3 (moto) behind a TCP proxy that closes and
reopens; a full disk and a read-only one (tmpfs); an SMTP server that is down; a provider
answering 500s, a 429 storm and truncated 200s; a run SIGKILLed on the ephemeral API (no
Prefect automation releases it). Two rows live beside their own machinery: a batch that
fails mid-way (``test_release_exact.py``) and the Prefect server killed mid-run
(``tests/e2e/test_prefect_outage.py``).

Every row asserts the same: the run's final status, every entry's final status, no profile
row without its objects and no object without its row, the ledger equal to the calls the
provider billed (HTTP 200s, truncated ones included) with nothing left reserved, a history
row, and that the next run finishes everything without a person. Each row also writes what it
saw to ``.data/fault-matrix/<row>.json`` (the closing note's matrix)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import update

from core.config import PROJECT_ROOT
from core.db import session_scope
from core.db.engine import dispose_engines
from core.db.migrate import upgrade
from core.db.types import utcnow
from core.errors import JobRunFailed
from core.profiles.models import ProfileEntry
from flows.profiles import profile_fetcher
from tests.conftest import free_port, reload_settings
from tests.factories import (
    entry_rows,
    history_rows,
    ledger,
    profile_rows,
    seed_entries,
    set_quota,
    urns,
)
from tests.faults import PrivatePostgres, SmallDisk, TcpProxy, kill_fetcher_mid_batch

ENTRIES, BATCH, LATENCY_MS = 300, 10, 50
MATRIX = PROJECT_ROOT / ".data" / "fault-matrix"


def row(name: str) -> Any:
    return pytest.mark.xdist_group(f"fault-{name}")  # each row beside the others


# -- what every row checks ----------------------------------------------------------------
def billed(sandbox: Any) -> int:
    return int(sandbox.stats()["statuses"].get(200, 0))


def local_keys(objects: Path) -> Callable[[], set[str]]:
    return lambda: {str(p.relative_to(objects)) for p in objects.rglob("*.json")} if objects.exists() else set()


def check(url: str, sandbox: Any, keys: Callable[[], set[str]], *, sink_down: bool = False) -> dict[str, Any]:
    """The invariants after any run; returns the row's figures. ``sink_down``: the storage was
    down as the run ended, so objects it could not remove may remain, each of an entry PENDING
    for ``storage unavailable`` (the next run removes them before it claims)."""
    entries = entry_rows(url)
    stored = keys()
    referenced = {k for p in profile_rows(url).values() for k in (p.raw_s3_key, p.cleaned_s3_key)}
    q = ledger(url)
    statuses = Counter(e.status for e in entries.values())
    assert not statuses.get("FETCHING"), statuses
    assert referenced <= stored, f"profile rows without objects: {sorted(referenced - stored)[:5]}"
    orphans = stored - referenced
    if sink_down:
        waiting = {u for u, e in entries.items() if e.status == "PENDING" and "storage unavailable" in (e.error_message or "")}
        assert {k.removeprefix("profiles/").rsplit("-", 2)[0] for k in orphans} <= waiting, sorted(orphans)[:5]
    else:
        assert not orphans, f"orphan objects: {sorted(orphans)[:5]}"
    assert q.reserved == 0 and q.calls_used == billed(sandbox), (q.reserved, q.calls_used, billed(sandbox))
    assert history_rows(url), "no history row"
    return {"entries": dict(statuses), "orphans": len(orphans),
            "ledger_minus_provider": q.calls_used - billed(sandbox), "reserved": q.reserved}


async def run_fetcher() -> tuple[str, str]:
    """(status, summary) of one run, FAILED included."""
    try:
        result = await profile_fetcher(batch_size=BATCH)
    except JobRunFailed as exc:
        return "FAILED", str(exc)[:300]
    assert result is not None
    return result.status, result.summary()[:300]


async def follow_up(url: str, sandbox: Any, keys: Callable[[], set[str]]) -> dict[str, Any]:
    """The next run, with the fault gone: everything COMPLETED, nobody touched anything."""
    status, summary = await run_fetcher()
    figures = check(url, sandbox, keys)
    assert status == "SUCCESS" and figures["entries"] == {"COMPLETED": ENTRIES}, (status, summary, figures)
    return {"status": status, **figures}


def record(name: str, first: dict[str, Any], after: dict[str, Any], **extra: Any) -> None:
    MATRIX.mkdir(parents=True, exist_ok=True)
    (MATRIX / f"{name}.json").write_text(json.dumps({"row": name, "run": first, "next_run": after, **extra},
                                                    indent=1, default=str))


def when_completed(url: str, count: int, fault: Callable[[], None]) -> threading.Thread:
    """Run ``fault`` in a thread once ``count`` entries are COMPLETED (mid-run)."""
    def wait_then_fault() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if sum(e.status == "COMPLETED" for e in entry_rows(url).values()) >= count:
                    break
            except Exception:  # noqa: BLE001 - the database may be the fault
                pass
            time.sleep(0.05)
        fault()
    thread = threading.Thread(target=wait_then_fault, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def fetcher(app_env: dict[str, str], rapidapi_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """300 PENDING entries, a 2,000-call quota, 50 ms latency, 5 requests in flight."""
    for key, value in {"RAPIDAPI_CONCURRENCY": "5", "NOTIFY_POLICY": "never"}.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    rapidapi_sandbox.update_knobs(latency_ms=LATENCY_MS)
    return app_env


def seed(url: str) -> list[str]:
    names = urns(ENTRIES, prefix="ACoAAMatrix")
    seed_entries(url, names)
    set_quota(url, limit=2000)
    return names


# -- the rows -----------------------------------------------------------------------------
@row("database")
async def test_database_stopped_for_10_s(fetcher, rapidapi_sandbox, monkeypatch):
    pg = PrivatePostgres()
    try:
        monkeypatch.setenv("DATABASE_URL", pg.url)
        reload_settings()
        upgrade(pg.url)
        seed(pg.url)
        keys = local_keys(Path(fetcher["STORAGE_URL"].removeprefix("file://")))
        fault = when_completed(pg.url, 30, lambda: (pg.stop(), time.sleep(10), pg.start()))
        started = time.monotonic()
        status, summary = await run_fetcher()
        fault.join()
        first = {"status": status, "seconds": round(time.monotonic() - started, 1), **check(pg.url, rapidapi_sandbox, keys)}
        assert status == "SUCCESS" and first["entries"] == {"COMPLETED": ENTRIES}, (summary, first)
        assert first["seconds"] >= 10  # the run waited the outage out
        record("database", first, await follow_up(pg.url, rapidapi_sandbox, keys))
    finally:
        dispose_engines()
        pg.close()


@pytest.fixture
def s3_behind_proxy(fetcher: dict[str, str], moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TcpProxy, Callable[[], set[str]]]]:
    host, port = moto_s3.removeprefix("http://").split(":")
    proxy = TcpProxy((host, int(port)))
    bucket = f"matrix-{free_port()}"
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_MAX_ATTEMPTS": "1", "STORAGE_URL": f"s3://{bucket}/linkedin"}.items():
        monkeypatch.setenv(key, value)
    reload_settings()

    def keys() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="linkedin/")
        return {o["Key"].removeprefix("linkedin/") for page in pages for o in page.get("Contents", [])}
    yield proxy, keys
    proxy.close()


def assert_stopped_for_our_side(url: str, status: str, summary: str, first: dict[str, Any]) -> None:
    """A sink outage: the run stopped claiming, kept what it wrote, and what our side lost is
    PENDING (not FAILED) for the next run."""
    assert status in {"PARTIAL", "FAILED"} and "storage unavailable" in summary, (status, summary)
    assert set(first["entries"]) <= {"COMPLETED", "PENDING"}, first
    waiting = [e for e in entry_rows(url).values() if e.status == "PENDING" and e.error_message]
    assert all("storage unavailable" in (e.error_message or "") or "not fetched" in (e.error_message or "")
               for e in waiting), {e.error_message for e in waiting}


@row("s3")
async def test_s3_connection_drops_for_10_s(fetcher, rapidapi_sandbox, s3_behind_proxy):
    proxy, keys = s3_behind_proxy
    url = fetcher["DATABASE_URL"]
    seed(url)
    fault = when_completed(url, 30, lambda: (proxy.down(), time.sleep(10), proxy.up()))
    status, summary = await run_fetcher()
    fault.join()
    first = {"status": status, **check(url, rapidapi_sandbox, keys, sink_down=True)}
    assert_stopped_for_our_side(url, status, summary, first)
    wasted = billed(rapidapi_sandbox) - first["entries"].get("COMPLETED", 0)
    assert wasted <= 3 + 5, wasted  # the sink's watch (3 in a row) plus what was in flight
    record("s3", first, await follow_up(url, rapidapi_sandbox, keys), answers_lost_to_the_outage=wasted)


@pytest.fixture
def small_disk(fetcher: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SmallDisk, Callable[[], set[str]]]]:
    disk = SmallDisk(tmp_path / "disk", "16m")
    monkeypatch.setenv("STORAGE_URL", disk.path.as_uri())
    reload_settings()
    yield disk, local_keys(disk.path)
    disk.close()


@pytest.mark.parametrize("fault", [pytest.param("full", marks=row("disk-full")),
                                   pytest.param("read-only", marks=row("disk-read-only"))])
async def test_disk_full_or_read_only_for_10_s(fetcher, rapidapi_sandbox, small_disk, fault):
    disk, keys = small_disk
    url = fetcher["DATABASE_URL"]
    seed(url)
    hurt = disk.fill if fault == "full" else disk.read_only
    thread = when_completed(url, 30, lambda: (hurt(), time.sleep(10), disk.restore()))
    status, summary = await run_fetcher()
    thread.join()
    first = {"status": status, **check(url, rapidapi_sandbox, keys, sink_down=True)}
    assert_stopped_for_our_side(url, status, summary, first)
    wasted = billed(rapidapi_sandbox) - first["entries"].get("COMPLETED", 0)
    assert wasted <= 3 + 5, wasted
    record(f"disk-{fault}", first, await follow_up(url, rapidapi_sandbox, keys), answers_lost_to_the_outage=wasted)


@row("smtp")
async def test_smtp_down_for_the_run(fetcher, rapidapi_sandbox, smtp_sink, monkeypatch):
    url = fetcher["DATABASE_URL"]
    keys = local_keys(Path(fetcher["STORAGE_URL"].removeprefix("file://")))
    seed(url)
    monkeypatch.setenv("NOTIFY_POLICY", "always")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens
    reload_settings()
    status, _ = await run_fetcher()
    first = {"status": status, **check(url, rapidapi_sandbox, keys)}
    assert status == "SUCCESS" and first["entries"] == {"COMPLETED": ENTRIES}
    assert [r.email_pending for r in history_rows(url)] == [True]
    monkeypatch.setenv("SMTP_PORT", str(smtp_sink.port))
    reload_settings()
    after = await follow_up(url, rapidapi_sandbox, keys)
    mails = [m for m in smtp_sink.messages if "profile_fetcher" in m["Subject"]]
    assert len(mails) == 2 and not [r for r in history_rows(url) if r.email_pending]  # the lost one, then its own
    record("smtp", first, after, emails_after_next_run=len(mails))


@pytest.mark.parametrize("provider", [pytest.param("500s", marks=row("provider-500s")),
                                      pytest.param("429-storm", marks=row("provider-429s")),
                                      pytest.param("truncated", marks=row("provider-truncated"))])
async def test_the_provider_says_later(fetcher, rapidapi_sandbox, monkeypatch, provider):
    """500s (20 %), a 429 storm past the retries (60 entries, Retry-After 3600 s) and truncated
    200s (40 entries once, 10 of them twice): "later" entries wait their not-before time
    (capped at 10 min here), every 200 is billed once it reached the provider."""
    url = fetcher["DATABASE_URL"]
    keys = local_keys(Path(fetcher["STORAGE_URL"].removeprefix("file://")))
    names = seed(url)
    monkeypatch.setenv("RAPIDAPI_DEFER_MAX_SECONDS", "600")  # Retry-After 3600 s: capped at 10 min
    reload_settings()
    knobs: dict[str, Any] = {
        "500s": {"server_error_rate": 0.2},
        "429-storm": {"rate_limit_first": {u: 4 for u in names[:60]}, "retry_after_seconds": 3600},
        "truncated": {"truncate_first": {u: 2 if i < 10 else 1 for i, u in enumerate(names[:40])}},
    }[provider]
    rapidapi_sandbox.update_knobs(**knobs)
    status, summary = await run_fetcher()
    first = {"status": status, **check(url, rapidapi_sandbox, keys)}
    deferred = [e for e in entry_rows(url).values() if e.status == "PENDING"]
    assert set(first["entries"]) <= {"COMPLETED", "PENDING"}, first  # nothing FAILED for good
    assert deferred and all(e.not_before is not None for e in deferred), summary
    assert status == "PARTIAL" and f"{len(deferred)} entries deferred" in summary, (status, summary)
    if provider == "429-storm":
        assert {e.urn for e in deferred} == set(names[:60])
    if provider == "truncated":
        assert {e.urn for e in deferred} == set(names[:10])  # one retry of a cut answer, not more
        assert billed(rapidapi_sandbox) == ENTRIES + 40  # each cut answer billed: 40 retried once
    wait = 600 if provider == "429-storm" else 300  # Retry-After capped by deferMaxSeconds, else deferSeconds
    assert all(timedelta(seconds=wait - 10) < e.not_before - e.updated_at <= timedelta(seconds=wait)
               for e in deferred), [(e.not_before, e.updated_at) for e in deferred[:3]]
    rapidapi_sandbox.update_knobs(server_error_rate=0.0)
    with session_scope(url) as session:  # ten minutes later (the time is set, not waited)
        session.execute(update(ProfileEntry).where(ProfileEntry.not_before.is_not(None))
                        .values(not_before=utcnow() - timedelta(seconds=1)))
    record(f"provider-{provider}", first, await follow_up(url, rapidapi_sandbox, keys), deferred=len(deferred))




@row("sigkill-ephemeral")
async def test_a_run_on_the_ephemeral_api_is_sigkilled(fetcher, rapidapi_sandbox, tmp_path):
    """A script's run (its own ephemeral Prefect API: no automation will ever mark it Crashed)
    is SIGKILLed mid-batch; half an hour later (the time is set back, not waited) the next run's
    timeout sweep releases it exactly like the release flow."""
    url = fetcher["DATABASE_URL"]
    keys = local_keys(Path(fetcher["STORAGE_URL"].removeprefix("file://")))
    seed(url)
    rapidapi_sandbox.update_knobs(latency_ms=300)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, **fetcher,
           "PREFECT_HOME": str(tmp_path / "prefect-home"), "RAPIDAPI_CONCURRENCY": "5",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}  # a loaded machine
    await kill_fetcher_mid_batch(url, env, after_completed=30, settle=0.25)  # mid-batch
    holding = [e for e in entry_rows(url).values() if e.status == "FETCHING"]
    assert holding, "the kill left nothing claimed: not mid-batch"
    with session_scope(url) as session:  # half an hour later
        session.execute(update(ProfileEntry).where(ProfileEntry.status == "FETCHING")
                        .values(updated_at=utcnow() - timedelta(minutes=31)))
    first = {"status": "KILLED", "entries": dict(Counter(e.status for e in entry_rows(url).values())),
             "left_fetching": len(holding)}
    rapidapi_sandbox.update_knobs(latency_ms=LATENCY_MS)
    after = await follow_up(url, rapidapi_sandbox, keys)
    twice = sum(1 for n in rapidapi_sandbox.stats()["per_urn"].values() if n > 1)
    record("sigkill-ephemeral", first, after, urns_fetched_twice=twice)
