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
