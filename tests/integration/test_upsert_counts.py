"""Created versus updated are true counts on both PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.crypto.models import Asset
from core.db import session_scope
from core.db.migrate import upgrade
from core.db.types import utcnow
from core.db.upsert import upsert_rows


def _assets(ids: list[str], name: str) -> list[dict[str, object]]:
    now = utcnow()
    return [{"coingecko_id": i, "symbol": i[:3], "name": f"{name} {i}", "created_at": now,
             "updated_at": now} for i in ids]


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request, app_env, tmp_path):
    if request.param == "postgresql":
        return app_env["DATABASE_URL"]
    url = f"sqlite:///{tmp_path / 'upsert.db'}"
    upgrade(url)
    return url


def test_created_then_updated_counts_and_returning(any_db):
    with session_scope(any_db) as session:
        first = upsert_rows(session, Asset.__table__, _assets(["bitcoin", "ethereum"], "v1"),
                            conflict_columns=["coingecko_id"], returning=["id", "coingecko_id"])
    assert (first.created, first.updated) == (2, 0)
    assert {r.coingecko_id for r in first.rows} == {"bitcoin", "ethereum"}

    with session_scope(any_db) as session:
        # a duplicate key inside one call is collapsed (last wins), not an error
        second = upsert_rows(session, Asset.__table__,
                             _assets(["bitcoin", "solana", "ethereum", "solana"], "v2"),
                             conflict_columns=["coingecko_id"], returning=["id", "coingecko_id"])
    assert (second.created, second.updated) == (1, 2)
    ids = {r.coingecko_id: r.id for r in second.rows}
    assert ids["bitcoin"] == {r.coingecko_id: r.id for r in first.rows}["bitcoin"]
    with session_scope(any_db) as session:
        assert session.execute(select(func.count()).select_from(Asset)).scalar_one() == 3
        name = session.execute(select(Asset.name).where(Asset.coingecko_id == "bitcoin")).scalar_one()
    assert name == "v2 bitcoin"


def test_large_postgresql_upserts_go_through_copy_with_the_same_counts(app_env):
    from core.profiles.models import Profile

    url = app_env["DATABASE_URL"]
    now = utcnow()
    many = _assets([f"coin-{i}" for i in range(2500)], "v1")
    with session_scope(url) as session:
        first = upsert_rows(session, Asset.__table__, many, conflict_columns=["coingecko_id"],
                            returning=["id", "coingecko_id"])
    assert (first.created, first.updated, len(first.rows)) == (2500, 0, 2500)
    with session_scope(url) as session:
        again = upsert_rows(session, Asset.__table__, _assets([f"coin-{i}" for i in range(2400, 3600)], "v2"),
                            conflict_columns=["coingecko_id"])
    assert (again.created, again.updated) == (1100, 100)

    profiles = [{"urn": f"ACoA{i}", "first_name": "Ann", "geo": {"city": "Oslo"}, "skills": [{"name": "SQL"}],
                 "raw_s3_key": "r", "cleaned_s3_key": "c", "fetched_at": now, "created_at": now,
                 "updated_at": now} for i in range(1200)]
    with session_scope(url) as session:
        result = upsert_rows(session, Profile.__table__, profiles, conflict_columns=["urn"])
        geo = session.execute(select(Profile.geo).where(Profile.urn == "ACoA7")).scalar_one()
    assert result.created == 1200 and geo == {"city": "Oslo"}


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_insert_missing_counts_the_rows_it_inserted(dialect, pg_url, tmp_path):
    """It reported 0 on PostgreSQL (psycopg gives no rowcount for that INSERT)."""
    from core.db.migrate import upgrade
    from core.db.upsert import insert_missing
    from core.profiles.models import ProfileEntry
    from tests.conftest import _truncate

    url = pg_url if dialect == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    _truncate(url)
    with session_scope(url) as session:
        first = insert_missing(session, ProfileEntry.__table__, [{"urn": "ACoA1"}, {"urn": "ACoA2"}],
                               conflict_columns=["urn"])
        again = insert_missing(session, ProfileEntry.__table__, [{"urn": "ACoA2"}, {"urn": "ACoA3"}],
                               conflict_columns=["urn"])
    assert (first, again) == (2, 1)
