"""Start-up work that is ours stays small: a database at head costs one query, no Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.db.migrate import head_revision, upgrade

ROOT = Path(__file__).resolve().parents[2]
_CHECK = """
import sys, time
from core.db.migrate import ensure_schema
t = time.perf_counter()
ensure_schema(sys.argv[1])
print(f"{(time.perf_counter() - t) * 1000:.0f} ms", "alembic" in sys.modules)
"""


def _fresh_process(url: str) -> tuple[str, bool]:
    out = subprocess.run([sys.executable, "-c", _CHECK, url], cwd=ROOT, capture_output=True, text=True, check=True)
    took, imported = out.stdout.split(" ms ")
    return took, imported.strip() == "True"


def test_a_database_at_head_is_checked_without_importing_alembic(tmp_path: Path, pg_url: str) -> None:
    sqlite = f"sqlite:///{tmp_path / 'app.db'}"
    assert _fresh_process(sqlite)[1] is True  # a new database: migrated, Alembic needed
    for url in (sqlite, pg_url):
        upgrade(url)
        took, imported = _fresh_process(url)
        assert imported is False, url
        print(f"\nensure_schema at head ({url.split(':')[0]}): {took} ms")


def test_the_head_is_read_from_the_migration_files() -> None:
    names = sorted(p.name for p in (ROOT / "core" / "db" / "migrations" / "versions").glob("0*.py"))
    assert head_revision() == names[-1].split("_")[0]


_LAZY = """
import sys
import {module}
print(",".join(sorted(m for m in {absent!r} if m in sys.modules)))
"""


def _imported(module: str, absent: tuple[str, ...]) -> list[str]:
    code = _LAZY.format(module=module, absent=absent)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_a_flow_command_imports_no_s3_alembic_or_deployment_trigger_code() -> None:
    # S3 (prefect-aws, boto3) only for an s3:// STORAGE_URL, Alembic only for a database
    # behind head, run_deployment only when a run starts parallel runs.
    absent = ("boto3", "botocore", "prefect_aws", "alembic", "prefect.deployments.flow_runs")
    assert _imported("flows.profiles", absent) == []


def test_the_schema_check_needs_neither_the_orm_nor_pydantic() -> None:
    assert _imported("core.db.migrate", ("sqlalchemy.orm", "pydantic", "alembic")) == []


def test_a_run_outside_a_deployment_is_told_without_asking_the_api(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import uuid
    from types import SimpleNamespace

    from prefect.context import FlowRunContext
    from prefect.runtime import deployment, flow_run

    from prefect_api import deployment_name

    def api_call() -> str:
        raise AssertionError("prefect.runtime.deployment asked the API")

    run = SimpleNamespace(deployment_id=None)
    monkeypatch.setattr(FlowRunContext, "get", classmethod(lambda cls: SimpleNamespace(flow_run=run)))
    monkeypatch.setattr(deployment, "get_name", api_call)
    assert deployment_name() is None

    run.deployment_id = uuid.uuid4()  # a deployment's run: its name is read as before
    monkeypatch.setattr(deployment, "get_name", lambda: "nightly")
    monkeypatch.setattr(flow_run, "get_flow_name", lambda: "profile-fetcher")
    assert deployment_name() == "profile-fetcher/nightly"
