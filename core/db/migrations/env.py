"""Alembic environment: the URL comes from settings or from ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from core.db.engine import get_engine
from core.models import Base

config = context.config
# Advisory-lock key so that two workers starting at once migrate one after the other.
_PG_LOCK_KEY = 7_461_203


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return url
    from core.settings import get_settings

    return get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Batch migrations rebuild SQLite tables (copy, drop, rename); with foreign keys on,
    dropping a referenced table would cascade into its children. The pragma only works
    outside a transaction, so it goes straight to the driver connection (autocommit)."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def run_migrations_online() -> None:
    engine = get_engine(_url())
    with engine.connect() as connection:
        is_pg = connection.dialect.name == "postgresql"
        is_sqlite = connection.dialect.name == "sqlite"
        if is_pg:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            connection.commit()
        if is_sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if is_sqlite:
                connection.rollback()
                _sqlite_foreign_keys(connection, on=True)
            if is_pg:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
