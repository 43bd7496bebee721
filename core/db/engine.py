"""Engines (one per URL per process) and the transactional session scope.

Only ``session_scope`` needs SQLAlchemy's ORM, so it is imported there: a process that only
checks the schema (``core.db.migrate.ensure_schema``) does not pay for it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_log = logging.getLogger("jobpipes.db")
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class DatabaseUnreachable(Exception):
    """The database at a URL could not be connected to: one line naming the host, port and
    database and the driver's reason (the driver's traceback is logged at DEBUG)."""


def unreachable(url: str, exc: BaseException) -> DatabaseUnreachable:
    """The one-line error for a failed connection to ``url`` (no password in it)."""
    _log.debug("connecting to %s failed", make_url(url).render_as_string(hide_password=True), exc_info=exc)
    parsed = make_url(url)
    reason = str(getattr(exc, "orig", None) or exc).strip()
    # psycopg: 'connection failed: connection to server at "127.0.0.1", port 5433 failed: Connection refused'
    reason = reason.splitlines()[0].rsplit(" failed: ", 1)[-1] if reason else type(exc).__name__
    if parsed.drivername.startswith("sqlite"):
        return DatabaseUnreachable(f"database unreachable: SQLite file {parsed.database}: {reason}")
    return DatabaseUnreachable(f"database unreachable: {parsed.get_backend_name()} at {parsed.host or 'localhost'}:"
                               f"{parsed.port or 5432}, database {parsed.database!r}: {reason}")


def normalize_url(url: str) -> str:
    """Make ``postgresql://`` URLs use psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy emit BEGIN itself, so that we can make it BEGIN IMMEDIATE: two
        # writers then queue on the lock instead of deadlocking on a read->write upgrade.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def libpq_url(url: str) -> str:
    """A PostgreSQL URL as libpq (and a plain psycopg connection) takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def get_engine(url: str) -> Engine:
    """The engine for ``url``, created once per process."""
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = _sqlite_engine(url)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a process forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    from sqlalchemy.orm import Session

    with Session(get_engine(url), expire_on_commit=False) as session, session.begin():
        yield session
