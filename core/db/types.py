"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, also on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Database-side defaults, for rows written by plain SQL from outside this code base
# (``INSERT INTO profile_entries (urn) VALUES (...)``). Models and migrations use the same ones.
SERVER_NOW = text("CURRENT_TIMESTAMP")
EMPTY_JSON_OBJECT = text("'{}'")
EMPTY_JSON_ARRAY = text("'[]'")


class NewUuid(FunctionElement[uuid.UUID]):
    """A random UUID made by the database: ``gen_random_uuid()`` on PostgreSQL, 32 random hex
    digits on SQLite (the form SQLAlchemy's ``Uuid`` stores there)."""

    type = Uuid()
    inherit_cache = True
    name = "new_uuid"


@compiles(NewUuid, "postgresql")
def _new_uuid_pg(element: NewUuid, compiler: Any, **kw: Any) -> str:
    return "gen_random_uuid()"


@compiles(NewUuid, "sqlite")
def _new_uuid_sqlite(element: NewUuid, compiler: Any, **kw: Any) -> str:
    return "(lower(hex(randomblob(16))))"


SERVER_UUID = NewUuid()
