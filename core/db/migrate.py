"""Run Alembic migrations from code, once per process and URL.

Start-up matters (every flow run is a fresh process): Alembic is imported only when a
database is actually behind, and a database already at head is recognised by one query of
``alembic_version`` against the newest revision found in the versions folder. The check
itself costs a few milliseconds; what a fresh process pays for it is imports, so this module
needs SQLAlchemy's Core only (no ORM, no pydantic: ``bench/STARTUP_RESULTS.md``).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.db.engine import get_engine, normalize_url, unreachable

if TYPE_CHECKING:
    from alembic.config import Config

# core.config.PROJECT_ROOT, without importing core.config (pydantic) for the check at head.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = PROJECT_ROOT / "core" / "db" / "migrations"
_done: set[str] = set()
_lock = threading.Lock()
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*"([^"]*)"', re.M)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The one revision no other revision names as its parent (read from the files, no Alembic)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            parents.add(found.get("down_revision"))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations: expected one head, found {sorted(heads)}")
    return heads.pop()


def _at_head(url: str) -> bool:
    """True when the database is at head; DatabaseUnreachable when it cannot be connected to."""
    try:
        conn = get_engine(url).connect()
    except DBAPIError as exc:
        raise unreachable(url, exc) from None
    with conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        except DBAPIError:  # no alembic_version table yet: a new database
            return False


def ensure_schema(url: str) -> None:
    """Migrate to head the first time this process touches ``url``; cheap afterwards."""
    key = normalize_url(url)
    with _lock:
        if key in _done:
            return
        if not _at_head(url):
            upgrade(url)
        _done.add(key)
