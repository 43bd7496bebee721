"""Tables of brand data collection and scoring (seed 003)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, IdType
from core.db.types import EMPTY_JSON_ARRAY, SERVER_NOW, SERVER_UUID, JsonType, UTCDateTime, utcnow


class JobRunStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AnswerStatus(StrEnum):
    """``collector_results.status``: one collector's answer to one query."""

    COMPLETED = "completed"
    FAILED = "failed"
    DEFERRED = "deferred"  # the collector said later (429/5xx): asked again by a run past ``not_before``


class Brand(Base):
    """A customer's brand; its competitors are tracked in the same answers."""

    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("customer_id", "name", name="uq_brands_customer_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=SERVER_UUID)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(200))
    competitors: Mapped[list[str]] = mapped_column(JsonType, default=list, server_default=EMPTY_JSON_ARRAY)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)


class BrandTopic(Base):
    __tablename__ = "brand_topics"
    __table_args__ = (UniqueConstraint("brand_id", "name", name="uq_brand_topics_brand_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=SERVER_UUID)
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("brands.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)


class GeneratedQuery(Base):
    """A query chosen at onboarding for a brand and topic (the seed's ``generated_queries``)."""

    __tablename__ = "generated_queries"
    __table_args__ = (UniqueConstraint("brand_id", "query_text", name="uq_generated_queries_brand_text"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=SERVER_UUID)
    brand_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("brands.id", ondelete="CASCADE"))
    topic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("brand_topics.id", ondelete="CASCADE"))
    query_text: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=SERVER_NOW)


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
    status: Mapped[str] = mapped_column(String(20))  # AnswerStatus
    answer_text: Mapped[str | None] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    raw_key: Mapped[str | None] = mapped_column(String(1000))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    positions_scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sentiment_scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a deferred answer: asked again from then


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
