"""Tables of the domain state that users query with SQL (seed 000 names)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import JsonType, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class EntryStatus(StrEnum):
    PENDING = "PENDING"
    FETCHING = "FETCHING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class RunStatus(StrEnum):
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    SKIPPED = "SKIPPED"


class CronJobConfig(Base):
    """One scheduled job's knobs; defaults are inserted when missing (seed 000)."""

    __tablename__ = "cron_job_configs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    job_type: Mapped[str] = mapped_column(String(50))
    schedule: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    batch_size: Mapped[int] = mapped_column(Integer, default=10)
    respect_quota: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiQuota(Base):
    """The quota ledger: one row per provider and month (``YYYY-MM``, UTC)."""

    __tablename__ = "api_quota_ledger"
    __table_args__ = (UniqueConstraint("provider", "period", name="uq_api_quota_provider_period"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    period: Mapped[str] = mapped_column(String(7))
    monthly_limit: Mapped[int] = mapped_column(Integer)
    calls_used: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProfileEntry(Base):
    """A LinkedIn URN waiting to be fetched, and what became of it."""

    __tablename__ = "profile_entries"
    __table_args__ = (Index("ix_profile_entries_status_created", "status", "created_at", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    urn: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=EntryStatus.PENDING)
    error_message: Mapped[str | None] = mapped_column(Text)
    fetch_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Profile(Base):
    """The cleaned profile, with the object keys of its raw and cleaned documents."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    urn: Mapped[str] = mapped_column(String(200), unique=True)
    username: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    headline: Mapped[str | None] = mapped_column(Text)
    geo: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    educations: Mapped[list[Any] | None] = mapped_column(JsonType)
    full_positions: Mapped[list[Any] | None] = mapped_column(JsonType)
    skills: Mapped[list[Any] | None] = mapped_column(JsonType)
    raw_s3_key: Mapped[str] = mapped_column(String(500))
    cleaned_s3_key: Mapped[str] = mapped_column(String(500))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class JobExecutionHistory(Base):
    """One row per job run, with its counts and metrics (seed 000)."""

    __tablename__ = "job_execution_history"
    __table_args__ = (Index("ix_job_execution_history_job_started", "job_name", "started_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_name: Mapped[str] = mapped_column(String(100))
    job_type: Mapped[str] = mapped_column(String(50))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    total_processed: Mapped[int] = mapped_column(Integer, default=0)
    successful_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    items_created: Mapped[int] = mapped_column(Integer, default=0)
    items_updated: Mapped[int] = mapped_column(Integer, default=0)
    items_skipped: Mapped[int] = mapped_column(Integer, default=0)
    api_calls_made: Mapped[int] = mapped_column(Integer, default=0)
    quota_remaining: Mapped[int | None] = mapped_column(Integer)
    error_summary: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    config_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("cron_job_configs.id", ondelete="SET NULL")
    )


class Asset(Base):
    """A crypto asset known to CoinGecko (seed 004)."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    coingecko_id: Mapped[str] = mapped_column(String(200), unique=True)
    symbol: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    image_url: Mapped[str | None] = mapped_column(Text)
    market_cap_rank: Mapped[int | None] = mapped_column(Integer)
    is_tracked: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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


class JobStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class Job(Base):
    """An application job (seed 002): the row is also the transactional outbox entry."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_type: Mapped[str] = mapped_column(String(200))
    job_data: Mapped[dict[str, Any]] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(Text)
    progress_message: Mapped[str | None] = mapped_column(Text)
    progress_percent: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    task_run_id: Mapped[str | None] = mapped_column(String(64))
    scheduled_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ScheduledJob(Base):
    """A recurring job, mirrored as a Prefect deployment schedule.

    Two kinds share the table: application jobs (seed 002, ``brand_id`` NULL, run through
    the job queue) and brand jobs (seed 003, ``brand_id``/``customer_id`` set, ``job_data``
    holding the run metadata, run as ``brand-job`` flow runs)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_brand", "customer_id", "brand_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    job_type: Mapped[str] = mapped_column(String(200))
    job_data: Mapped[dict[str, Any]] = mapped_column(JsonType)
    cron_expression: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_run_time: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    brand_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Registration(Base):
    """An event registration; expired ones are purged by PurgeExpiredRegistrationsJob."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobConfiguration(Base):
    """Per-job configuration of the Riot pipelines (seed 001), validated per job type."""

    __tablename__ = "job_configurations"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_type: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    config_json: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RiotPlayer(Base):
    """A tracked or discovered player and how far their match history has been fetched."""

    __tablename__ = "riot_players"

    puuid: Mapped[str] = mapped_column(String(78), primary_key=True)
    platform: Mapped[str] = mapped_column(String(8))
    game_name: Mapped[str | None] = mapped_column(String(100))
    tag_line: Mapped[str | None] = mapped_column(String(20))
    is_tracked: Mapped[bool] = mapped_column(Boolean, default=False)
    matches_fetched: Mapped[int] = mapped_column(Integer, default=0)
    next_match_offset: Mapped[int] = mapped_column(Integer, default=0)
    is_exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_match_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RiotMatch(Base):
    __tablename__ = "riot_matches"

    match_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(8))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    game_creation: Mapped[int | None] = mapped_column(BigInteger)
    game_duration: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiotMatchParticipant(Base):
    __tablename__ = "riot_match_participants"
    __table_args__ = (UniqueConstraint("match_id", "puuid", name="uq_riot_participants_match_puuid"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    match_id: Mapped[str] = mapped_column(String(40), ForeignKey("riot_matches.match_id", ondelete="CASCADE"))
    puuid: Mapped[str] = mapped_column(String(78))
    team_id: Mapped[int | None] = mapped_column(Integer)
    champion_name: Mapped[str | None] = mapped_column(String(50))
    summoner_level: Mapped[int | None] = mapped_column(Integer)
    kills: Mapped[int | None] = mapped_column(Integer)
    deaths: Mapped[int | None] = mapped_column(Integer)
    assists: Mapped[int | None] = mapped_column(Integer)
    cs: Mapped[int | None] = mapped_column(Integer)
    time_played: Mapped[int | None] = mapped_column(Integer)
    win: Mapped[bool | None] = mapped_column(Boolean)


class SmurfAnalysis(Base):
    """The latest analysis of a player: every signal and the thresholds that produced it."""

    __tablename__ = "smurf_analyses"

    puuid: Mapped[str] = mapped_column(String(78), primary_key=True)
    games: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    is_flagged: Mapped[bool] = mapped_column(Boolean)
    signals: Mapped[dict[str, Any]] = mapped_column(JsonType)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JsonType)
    analyzed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BanCheck(Base):
    """One ban check of a flagged player, with the API answers it was based on."""

    __tablename__ = "ban_checks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    puuid: Mapped[str] = mapped_column(String(78))
    verdict: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonType)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- brand data collection and scoring (seed 003) ------------------------------------------


class JobRunStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Brand(Base):
    """A customer's brand; its competitors are tracked in the same answers."""

    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("customer_id", "name", name="uq_brands_customer_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(200))
    competitors: Mapped[list[str]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BrandTopic(Base):
    __tablename__ = "brand_topics"
    __table_args__ = (UniqueConstraint("brand_id", "name", name="uq_brand_topics_brand_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("brands.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GeneratedQuery(Base):
    """A query chosen at onboarding for a brand and topic (the seed's ``generated_queries``)."""

    __tablename__ = "generated_queries"
    __table_args__ = (UniqueConstraint("brand_id", "query_text", name="uq_generated_queries_brand_text"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("brands.id", ondelete="CASCADE"))
    topic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("brand_topics.id", ondelete="CASCADE"))
    query_text: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(Base):
    """One run of a brand job (seed 003), whoever started it: a schedule, a trigger, a notebook."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_brand_created", "brand_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    scheduled_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    job_type: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default=JobRunStatus.PENDING)
    metadata_json: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CollectorResult(Base):
    """One answer of one collector to one query in one run (raw JSON in object storage)."""

    __tablename__ = "collector_results"
    __table_args__ = (
        UniqueConstraint("job_run_id", "query_id", "collector", name="uq_collector_results_run_query_collector"),
        Index("ix_collector_results_brand", "brand_id", "collected_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_run_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("job_runs.id", ondelete="CASCADE"))
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    query_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    collector: Mapped[str] = mapped_column(String(50))
    query_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # completed | failed
    answer_text: Mapped[str | None] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    raw_key: Mapped[str | None] = mapped_column(String(1000))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    positions_scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sentiment_scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnswerBrandScore(Base):
    """Position, mentions and sentiment of one tracked brand in one answer."""

    __tablename__ = "answer_brand_scores"
    __table_args__ = (UniqueConstraint("collector_result_id", "brand_name", name="uq_answer_brand_scores"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    collector_result_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("collector_results.id", ondelete="CASCADE"))
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    brand_name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int | None] = mapped_column(Integer)
    mentions: Mapped[int] = mapped_column(Integer, default=0)
    sentiment: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(10))


class AnswerCitation(Base):
    __tablename__ = "answer_citations"
    __table_args__ = (UniqueConstraint("collector_result_id", "url", name="uq_answer_citations"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    collector_result_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("collector_results.id", ondelete="CASCADE"))
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    url: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(Text)


class BrandScoreAggregate(Base):
    """Brand-level scores of one run, for the brand and each competitor."""

    __tablename__ = "brand_scores"
    __table_args__ = (UniqueConstraint("job_run_id", "brand_name", name="uq_brand_scores_run_brand"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_run_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("job_runs.id", ondelete="CASCADE"))
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    brand_name: Mapped[str] = mapped_column(String(200))
    is_own_brand: Mapped[bool] = mapped_column(Boolean)
    answers: Mapped[int] = mapped_column(Integer)
    mentioned_answers: Mapped[int] = mapped_column(Integer)
    mentions: Mapped[int] = mapped_column(Integer)
    visibility: Mapped[float] = mapped_column(Float)
    share_of_voice: Mapped[float] = mapped_column(Float)
    first_mention_rate: Mapped[float] = mapped_column(Float)
    average_position: Mapped[float | None] = mapped_column(Float)
    average_sentiment: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
