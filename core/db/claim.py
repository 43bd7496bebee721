"""Claim the oldest matching rows of a queue table, safely under concurrent claimers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session


def claim_oldest(
    session: Session,
    model: Any,
    *,
    where: Sequence[ColumnElement[bool]],
    limit: int,
    values: dict[str, Any],
    returning: Sequence[InstrumentedAttribute[Any]],
) -> list[Row[Any]]:
    """UPDATE the ``limit`` oldest rows matching ``where`` (by created_at, id) to ``values``.

    The candidates are picked with FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent
    claimers get disjoint rows (SQLite serialises writers, same guarantee). They sit in a
    CTE, not "id IN (subquery)": PostgreSQL may re-run an IN-subquery per row, and with
    SKIP LOCKED each run can pick different rows, so the LIMIT would not hold. Returns
    the ``returning`` columns, oldest first.
    """
    if limit <= 0:
        return []
    candidates = (
        select(model.id).where(*where).order_by(model.created_at, model.id)
        .limit(limit).with_for_update(skip_locked=True).cte("claimable")
    )
    rows = session.execute(
        update(model).where(model.id == candidates.c.id, *where).values(**values)
        .returning(*returning, model.created_at, model.id.label("_claim_id"))
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(rows, key=lambda r: (r.created_at, r._claim_id))
