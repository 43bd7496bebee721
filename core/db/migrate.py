"""Run Alembic migrations from code, once per process and URL."""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config

from core.config import PROJECT_ROOT
from core.db.engine import normalize_url

_done: set[str] = set()
_lock = threading.Lock()


def alembic_config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "core" / "db" / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def ensure_schema(url: str) -> None:
    """Migrate to head the first time this process touches ``url``; cheap afterwards."""
    key = normalize_url(url)
    with _lock:
        if key in _done:
            return
        upgrade(url)
        _done.add(key)
