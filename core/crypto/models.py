"""Tables of the crypto jobs (seed 004): assets, daily rankings, prices, contracts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import SERVER_NOW, UTCDateTime, utcnow


class Asset(Base):
    """A crypto asset known to CoinGecko (seed 004)."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    coingecko_id: Mapped[str] = mapped_column(String(200), unique=True)
    symbol: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    image_url: Mapped[str | None] = mapped_column(Text)
    market_cap_rank: Mapped[int | None] = mapped_column(Integer)
    is_tracked: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # CoinGecko refused its details for now (429/5xx): contract collection leaves it out until then.
    contracts_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, server_default=SERVER_NOW)


class AssetRanking(Base):
    """Daily market-cap ranking snapshot; natural key (asset_id, snapshot_date, source)."""

    __tablename__ = "asset_rankings"
    __table_args__ = (UniqueConstraint("asset_id", "snapshot_date", "source",
                                       name="uq_asset_rankings_asset_date_source"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    asset_id: Mapped[int] = mapped_column(IdType, ForeignKey("assets.id", ondelete="CASCADE"))
    snapshot_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(50))
    rank: Mapped[int | None] = mapped_column(Integer)
    price_usd: Mapped[float | None] = mapped_column(Float)
    market_cap_usd: Mapped[float | None] = mapped_column(Float)
    fully_diluted_valuation_usd: Mapped[float | None] = mapped_column(Float)
    volume_24h_usd: Mapped[float | None] = mapped_column(Float)
    price_change_24h_pct: Mapped[float | None] = mapped_column(Float)
    circulating_supply: Mapped[float | None] = mapped_column(Float)
    total_supply: Mapped[float | None] = mapped_column(Float)
    max_supply: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AssetPrice(Base):
    """A price observation, timestamp rounded to the minute; key (asset_id, timestamp, source)."""

    __tablename__ = "asset_prices"
    __table_args__ = (UniqueConstraint("asset_id", "timestamp", "source",
                                       name="uq_asset_prices_asset_ts_source"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    asset_id: Mapped[int] = mapped_column(IdType, ForeignKey("assets.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(50))
    price_usd: Mapped[float] = mapped_column(Float)
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AssetContract(Base):
    """A token contract of an asset on one chain; key (chain, contract_address)."""

    __tablename__ = "asset_contracts"
    __table_args__ = (UniqueConstraint("chain", "contract_address",
                                       name="uq_asset_contracts_chain_address"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    asset_id: Mapped[int] = mapped_column(IdType, ForeignKey("assets.id", ondelete="CASCADE"))
    chain: Mapped[str] = mapped_column(String(100))
    contract_address: Mapped[str] = mapped_column(String(200))
    decimals: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
