"""Crypto market tables (seed 004) and created/updated/skipped counts in run history.

Natural keys, enforced by unique constraints so that every job can upsert with ON CONFLICT:
  asset_rankings  (asset_id, snapshot_date, source)
  asset_prices    (asset_id, timestamp, source)   timestamp rounded to the minute
  asset_contracts (chain, contract_address)       EVM addresses lower-cased

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _asset_fk() -> sa.Column:
    return sa.Column("asset_id", _id, sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("job_execution_history") as batch:
        for column in ("items_created", "items_updated", "items_skipped"):
            batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "assets",
        sa.Column("id", _id, primary_key=True),
        sa.Column("coingecko_id", sa.String(200), nullable=False, unique=True),
        sa.Column("symbol", sa.String(50), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("image_url", sa.Text()),
        sa.Column("market_cap_rank", sa.Integer()),
        sa.Column("is_tracked", sa.Boolean(), nullable=False, server_default=sa.true()),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "asset_rankings",
        sa.Column("id", _id, primary_key=True),
        _asset_fk(),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("rank", sa.Integer()),
        *(sa.Column(name, sa.Float()) for name in (
            "price_usd", "market_cap_usd", "fully_diluted_valuation_usd", "volume_24h_usd",
            "price_change_24h_pct", "circulating_supply", "total_supply", "max_supply")),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("asset_id", "snapshot_date", "source",
                            name="uq_asset_rankings_asset_date_source"),
    )
    op.create_table(
        "asset_prices",
        sa.Column("id", _id, primary_key=True),
        _asset_fk(),
        _ts("timestamp"),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("price_usd", sa.Float(), nullable=False),
        _ts("source_updated_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("asset_id", "timestamp", "source", name="uq_asset_prices_asset_ts_source"),
    )
    op.create_table(
        "asset_contracts",
        sa.Column("id", _id, primary_key=True),
        _asset_fk(),
        sa.Column("chain", sa.String(100), nullable=False),
        sa.Column("contract_address", sa.String(200), nullable=False),
        sa.Column("decimals", sa.Integer()),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("chain", "contract_address", name="uq_asset_contracts_chain_address"),
    )


def downgrade() -> None:
    op.drop_table("asset_contracts")
    op.drop_table("asset_prices")
    op.drop_table("asset_rankings")
    op.drop_table("assets")
    with op.batch_alter_table("job_execution_history") as batch:
        for column in ("items_skipped", "items_updated", "items_created"):
            batch.drop_column(column)
