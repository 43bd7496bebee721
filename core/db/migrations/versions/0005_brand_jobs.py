"""Brand data collection and scoring (seed 003): brands, topics, generated_queries,
job_runs, collector_results, answer scores and citations, brand_scores; brand columns on
scheduled_jobs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(name: str, table: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.add_column(sa.Column("brand_id", sa.Uuid()))
        batch.add_column(sa.Column("customer_id", sa.Uuid()))
    op.create_index("ix_scheduled_jobs_brand", "scheduled_jobs", ["customer_id", "brand_id"])
    op.create_table(
        "brands",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("competitors", _json, nullable=False),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("customer_id", "name", name="uq_brands_customer_name"),
        sa.CheckConstraint("length(trim(name)) > 0", name="ck_brands_name"),
    )
    op.create_table(
        "brand_topics",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("brand_id", "brands"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("brand_id", "name", name="uq_brand_topics_brand_name"),
    )
    op.create_table(
        "generated_queries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("brand_id", "brands"),
        _fk("topic_id", "brand_topics"),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("brand_id", "query_text", name="uq_generated_queries_brand_text"),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("scheduled_job_id", sa.Uuid()),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("job_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("metadata", _json, nullable=False),
        sa.Column("metrics", _json, nullable=False),
        sa.Column("error_message", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("flow_run_id", sa.String(64)),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        sa.CheckConstraint("status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')",
                           name="ck_job_runs_status"),
        sa.CheckConstraint("job_type IN ('data_collection', 'scoring', 'data_collection_and_scoring')",
                           name="ck_job_runs_job_type"),
    )
    op.create_index("ix_job_runs_brand_created", "job_runs", ["brand_id", "created_at"])
    op.create_table(
        "collector_results",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _fk("job_run_id", "job_runs"),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("query_id", sa.Uuid(), nullable=False),
        sa.Column("collector", sa.String(50), nullable=False),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("answer_text", sa.Text()),
        sa.Column("citations", _json, nullable=False),
        sa.Column("raw_key", sa.String(1000)),
        sa.Column("latency_ms", sa.Integer()),
        sa.Column("api_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
        _ts("collected_at", nullable=False),
        _ts("positions_scored_at"),
        _ts("sentiment_scored_at"),
        sa.UniqueConstraint("job_run_id", "query_id", "collector", name="uq_collector_results_run_query_collector"),
        sa.CheckConstraint("status IN ('completed', 'failed')", name="ck_collector_results_status"),
    )
    op.create_index("ix_collector_results_brand", "collector_results", ["brand_id", "collected_at"])
    op.create_table(
        "answer_brand_scores",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        _fk("collector_result_id", "collector_results"),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("brand_name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer()),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("sentiment", sa.Float()),
        sa.Column("sentiment_label", sa.String(10)),
        sa.UniqueConstraint("collector_result_id", "brand_name", name="uq_answer_brand_scores"),
    )
    op.create_table(
        "answer_citations",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        _fk("collector_result_id", "collector_results"),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("domain", sa.String(300), nullable=False),
        sa.Column("title", sa.Text()),
        sa.UniqueConstraint("collector_result_id", "url", name="uq_answer_citations"),
    )
    op.create_table(
        "brand_scores",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        _fk("job_run_id", "job_runs"),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("brand_name", sa.String(200), nullable=False),
        sa.Column("is_own_brand", sa.Boolean(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("mentioned_answers", sa.Integer(), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.Float(), nullable=False),
        sa.Column("share_of_voice", sa.Float(), nullable=False),
        sa.Column("first_mention_rate", sa.Float(), nullable=False),
        sa.Column("average_position", sa.Float()),
        sa.Column("average_sentiment", sa.Float()),
        _ts("computed_at", nullable=False),
        sa.UniqueConstraint("job_run_id", "brand_name", name="uq_brand_scores_run_brand"),
    )


def downgrade() -> None:
    for table in ("brand_scores", "answer_citations", "answer_brand_scores", "collector_results"):
        op.drop_table(table)
    op.drop_index("ix_job_runs_brand_created", "job_runs")
    for table in ("job_runs", "generated_queries", "brand_topics", "brands"):
        op.drop_table(table)
    op.drop_index("ix_scheduled_jobs_brand", "scheduled_jobs")
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.drop_column("customer_id")
        batch.drop_column("brand_id")
