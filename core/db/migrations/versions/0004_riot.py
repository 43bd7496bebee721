"""Riot match pipelines (seed 001): job_configurations, players, matches, participants.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

DEFAULT_JOBS = [
    ("TRACKED_PLAYER_UPDATER", "Tracked player updater", "*/2 * * * *",
     {"max_new_matches_per_player": 20, "max_tracked_players": 50, "platform": "na1"}),
    ("MATCH_FETCHER", "Match fetcher", "*/5 * * * *",
     {"discovered_players_per_run": 10, "matches_per_player_per_run": 20, "target_matches_per_player": 50,
      "platform": "na1"}),
    ("SMURF_ANALYZER", "Smurf analyzer", "*/10 * * * *",
     {"unanalyzed_players_per_run": 100, "min_matches_required": 10}),
    ("BAN_CHECKER", "Ban checker", "0 4 * * *",
     {"ban_check_days": 7, "max_checks_per_run": 50, "platform": "na1"}),
]


_NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    jobs = op.create_table(
        "job_configurations",
        sa.Column("id", _id, primary_key=True),
        sa.Column("job_type", sa.String(50), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("schedule", sa.String(100), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("config_json", _json, nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint("job_type = UPPER(job_type)", name="ck_job_configurations_upper"),
    )
    # The seed's defaults, seeded by the migration as the seed prescribes.
    op.bulk_insert(jobs, [
        {"job_type": t, "name": n, "schedule": s, "is_active": True, "config_json": c,
         "created_at": _NOW, "updated_at": _NOW}
        for t, n, s, c in DEFAULT_JOBS
    ])
    op.create_table(
        "riot_players",
        sa.Column("puuid", sa.String(78), primary_key=True),
        sa.Column("platform", sa.String(8), nullable=False),
        sa.Column("game_name", sa.String(100)),
        sa.Column("tag_line", sa.String(20)),
        sa.Column("is_tracked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("matches_fetched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_match_offset", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("is_exhausted", sa.Boolean(), nullable=False, server_default=sa.false()),
        _ts("last_match_fetch_at"),
        _ts("discovered_at", nullable=False),
        _ts("updated_at", nullable=False),
    )
    op.create_index("ix_riot_players_fetch", "riot_players", ["is_tracked", "is_exhausted", "last_match_fetch_at"])
    op.create_table(
        "riot_matches",
        sa.Column("match_id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(8), nullable=False),
        sa.Column("queue_id", sa.Integer()),
        sa.Column("game_creation", sa.BigInteger()),
        sa.Column("game_duration", sa.Integer()),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "riot_match_participants",
        sa.Column("id", _id, primary_key=True),
        sa.Column("match_id", sa.String(40), sa.ForeignKey("riot_matches.match_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("puuid", sa.String(78), nullable=False),
        sa.Column("team_id", sa.Integer()),
        sa.Column("champion_name", sa.String(50)),
        sa.Column("summoner_level", sa.Integer()),
        sa.Column("kills", sa.Integer()),
        sa.Column("deaths", sa.Integer()),
        sa.Column("assists", sa.Integer()),
        sa.Column("cs", sa.Integer()),
        sa.Column("time_played", sa.Integer()),
        sa.Column("win", sa.Boolean()),
        sa.UniqueConstraint("match_id", "puuid", name="uq_riot_participants_match_puuid"),
    )
    op.create_index("ix_riot_participants_puuid", "riot_match_participants", ["puuid"])
    op.create_table(
        "smurf_analyses",
        sa.Column("puuid", sa.String(78), primary_key=True),
        sa.Column("games", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("is_flagged", sa.Boolean(), nullable=False),
        sa.Column("signals", _json, nullable=False),
        sa.Column("thresholds", _json, nullable=False),
        _ts("analyzed_at", nullable=False),
    )
    op.create_table(
        "ban_checks",
        sa.Column("id", _id, primary_key=True),
        sa.Column("puuid", sa.String(78), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("evidence", _json, nullable=False),
        _ts("checked_at", nullable=False),
        sa.CheckConstraint("verdict IN ('ACTIVE', 'LIKELY_BANNED', 'UNKNOWN')", name="ck_ban_checks_verdict"),
    )
    op.create_index("ix_ban_checks_puuid_checked", "ban_checks", ["puuid", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_ban_checks_puuid_checked", "ban_checks")
    op.drop_table("ban_checks")
    op.drop_table("smurf_analyses")
    op.drop_index("ix_riot_participants_puuid", "riot_match_participants")
    op.drop_table("riot_match_participants")
    op.drop_table("riot_matches")
    op.drop_index("ix_riot_players_fetch", "riot_players")
    op.drop_table("riot_players")
    op.drop_table("job_configurations")
