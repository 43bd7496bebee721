"""The same flow on SQLite and on S3 (moto server), S3 outages, and hostile URNs."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from sqlalchemy import insert

from core.db import session_scope
from core.db.migrate import upgrade
from core.db.types import utcnow
from core.errors import InvalidUrnError, JobRunFailed
from core.profiles.models import ProfileEntry
from flows.profiles import add_profile_entries, profile_fetcher
from tests.conftest import free_port, reload_settings
from tests.factories import entry_rows, history_rows, profile_rows, seed_entries, urns


@pytest.fixture
def s3_env(app_env, moto_s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    bucket = f"profiles-{free_port()}"
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("STORAGE_URL", f"s3://{bucket}/linkedin")
    reload_settings()
    return s3, bucket


async def test_profile_fetcher_on_sqlite_with_s3(s3_env, monkeypatch, tmp_path):
    s3, bucket = s3_env
    sqlite_url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    reload_settings()
    upgrade(sqlite_url)
    names = urns(7)
    seed_entries(sqlite_url, names)

    summary = await profile_fetcher(batch_size=3)

    assert summary.status == "SUCCESS"
    assert {r.status for r in entry_rows(sqlite_url).values()} == {"COMPLETED"}
    profile = profile_rows(sqlite_url)[names[0]]
    assert profile.fetched_at.tzinfo is not None
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"linkedin/{profile.raw_s3_key}" in keys and f"linkedin/{profile.cleaned_s3_key}" in keys
    assert len(keys) == 14
    body = json.loads(s3.get_object(Bucket=bucket, Key=f"linkedin/{profile.cleaned_s3_key}")["Body"].read())
    assert body["urn"] == names[0]
    assert history_rows(sqlite_url)[0].successful_count == 7


async def test_s3_down_fails_entries_and_leaves_nothing_half_written(app_env, s3_env, monkeypatch):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(3))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    reload_settings()

    with pytest.raises(JobRunFailed):
        await profile_fetcher()

    rows = entry_rows(url)
    # Our side failed, not the entries: back to PENDING (issue 19 item 4), each saying why.
    assert {r.status for r in rows.values()} == {"PENDING"}
    assert all("storage unavailable: cannot upload" in r.error_message for r in rows.values())
    assert profile_rows(url) == {}
    [run] = history_rows(url)
    assert run.status == "FAILED" and run.failed_count == 0 and "storage unavailable" in run.error_summary


async def test_hostile_urns_are_refused_at_enqueue_and_at_fetch(app_env, tmp_path):
    url = app_env["DATABASE_URL"]
    with pytest.raises(InvalidUrnError, match="invalid URN '../../etc/passwd'"):
        await add_profile_entries(["ACoAAGood1", "../../etc/passwd"])
    assert entry_rows(url) == {}  # nothing half-written: the good one was not added either

    now = utcnow()
    with session_scope(url) as session:  # an entry that got in some other way
        session.execute(insert(ProfileEntry).values(urn="..%2F..%2Fx/..", status="PENDING",
                                                    created_at=now, updated_at=now))
    seed_entries(url, ["ACoAAGood1"])
    await profile_fetcher()

    rows = entry_rows(url)
    assert rows["ACoAAGood1"].status == "COMPLETED"
    assert rows["..%2F..%2Fx/.."].status == "FAILED"
    assert "invalid URN" in rows["..%2F..%2Fx/.."].error_message
    root = Path(app_env["STORAGE_URL"].removeprefix("file://"))
    written = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    assert written and all(p.startswith("profiles/ACoAAGood1-") for p in written)
