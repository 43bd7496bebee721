"""Dialect-aware ``INSERT ... ON CONFLICT`` for SQLite and PostgreSQL, with true counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, FromClause, Row, func, literal_column, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

# Keep statements below both dialects' bind-parameter limits (SQLite: 32,766).
_MAX_PARAMS = 30_000
# From this many rows on, PostgreSQL upserts go through COPY into a temporary table.
_COPY_THRESHOLD = 1_000
# Rows per executemany call of an upsert (SQLite counts existing keys per chunk).
_ROWS_PER_CHUNK = 5_000


@dataclass
class UpsertResult:
    """Rows inserted versus rows that existed and were updated, and any RETURNING rows."""

    created: int = 0
    updated: int = 0
    rows: list[Row[Any]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.created + self.updated


def rowcount(result: object) -> int:
    """Rows matched by an INSERT/UPDATE/DELETE (0 when the driver cannot tell)."""
    return max(0, result.rowcount or 0) if isinstance(result, CursorResult) else 0


def _insert_for(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    return insert


def _chunks(rows: Sequence[dict[str, Any]], size: int | None = None) -> list[Sequence[dict[str, Any]]]:
    size = size or max(1, _MAX_PARAMS // max(1, len(rows[0])))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _dedupe(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Last row per natural key wins: one statement may not touch a row twice."""
    return list({tuple(row[k] for k in keys): row for row in rows}.values())


def insert_missing(
    session: Session, table: FromClause, rows: Sequence[dict[str, Any]], *, conflict_columns: Sequence[str]
) -> int:
    """Insert the ``rows`` whose ``conflict_columns`` do not exist yet; returns rows inserted."""
    if not rows:
        return 0
    inserted = 0
    insert = _insert_for(session)
    for chunk in _chunks(_dedupe(rows, conflict_columns)):
        stmt = insert(table).values(list(chunk)).on_conflict_do_nothing(index_elements=list(conflict_columns))
        # RETURNING counts what was inserted: psycopg reports no rowcount for this statement.
        inserted += len(session.execute(stmt.returning(literal_column("1"))).all())
    return inserted


def upsert_rows(
    session: Session,
    table: FromClause,
    rows: Sequence[dict[str, Any]],
    *,
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] | None = None,
    returning: Sequence[str] = (),
) -> UpsertResult:
    """Insert ``rows``, updating ``update_columns`` where ``conflict_columns`` already exist.

    ``update_columns`` defaults to every column given except the conflict columns and
    ``created_at``. Created versus updated are true counts: PostgreSQL reports them with
    ``RETURNING (xmax = 0)``; on SQLite the existing keys are counted first, which is exact
    because the transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    result = UpsertResult()
    if not rows:
        return result
    insert = _insert_for(session)
    is_pg = session.get_bind().dialect.name == "postgresql"
    unique = _dedupe(rows, conflict_columns)
    columns = list(unique[0])
    if update_columns is None:
        update_columns = [c for c in columns if c not in conflict_columns and c != "created_at"]
    key_cols = [table.c[c] for c in conflict_columns]
    extra = [table.c[c] for c in returning]
    if is_pg and len(unique) >= _COPY_THRESHOLD:
        return _pg_copy_upsert(session, table, unique, conflict_columns, update_columns, returning)
    # One compiled statement run with executemany: SQLAlchemy's "insertmanyvalues" batches it
    # into multi-row INSERTs (RETURNING included), far cheaper than compiling a huge VALUES.
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(conflict_columns),
        set_={c: stmt.excluded[c] for c in update_columns},
    )
    if is_pg:
        stmt = stmt.returning(literal_column("(xmax = 0)").label("_created"), *extra)
    elif extra:
        stmt = stmt.returning(*extra)
    for chunk in _chunks(unique, _ROWS_PER_CHUNK):
        existing = 0
        if not is_pg:
            keys = [tuple(row[c] for c in conflict_columns) for row in chunk]
            where = tuple_(*key_cols).in_(keys) if len(key_cols) > 1 else key_cols[0].in_([k[0] for k in keys])
            existing = session.execute(select(func.count()).select_from(table).where(where)).scalar_one()
        if is_pg or extra:
            out = session.execute(stmt, list(chunk)).all()
        else:
            session.execute(stmt, list(chunk))
            out = []
        created = sum(1 for r in out if r._created) if is_pg else len(chunk) - existing
        result.created += created
        result.updated += len(chunk) - created
        if extra:
            result.rows.extend(out)
    return result


def _pg_copy_upsert(
    session: Session,
    table: FromClause,
    rows: list[dict[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
    returning: Sequence[str],
) -> UpsertResult:
    """COPY the rows into a temporary table, then one INSERT ... SELECT ... ON CONFLICT.

    Parsing and binding tens of thousands of parameters costs far more than the upsert
    itself; COPY streams them instead. Same transaction, same counts as the plain path.
    """
    from psycopg import sql
    from psycopg.types.json import Jsonb

    columns = list(rows[0])
    name = getattr(table, "name", None) or str(table)
    target = sql.Identifier(name)
    staging = sql.Identifier(f"_upsert_{name}")
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
        cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                    .format(staging, cols, target))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, cols)) as copy:
            for row in rows:
                copy.write_row([Jsonb(v) if isinstance(v, dict | list) else v for v in row.values()])
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in update_columns)
        extra = sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(c)) for c in returning)
        cur.execute(sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}"
            " RETURNING (xmax = 0){}").format(
                target, cols, cols, staging,
                sql.SQL(", ").join(sql.Identifier(c) for c in conflict_columns), updates, extra))
        out = cur.fetchall()
        cur.execute(sql.SQL("DROP TABLE {}").format(staging))
    created = sum(1 for r in out if r[0])
    result = UpsertResult(created=created, updated=len(out) - created)
    if returning:
        from collections import namedtuple

        shape = namedtuple("Returned", list(returning))  # type: ignore[misc]
        result.rows = [shape(*r[1:]) for r in out]  # type: ignore[misc]
    return result
