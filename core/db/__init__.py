"""Database access: engine, models, migrations and repositories (no Prefect here)."""

from core.db.engine import get_engine, session_scope

__all__ = ["get_engine", "session_scope"]
