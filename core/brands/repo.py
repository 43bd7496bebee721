"""Brand tables (seed 003): brands, topics and queries, job runs, answers, scores."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, or_, select, update
from sqlalchemy.orm import Session

from core.brands.models import (
    AnswerBrandScore,
    AnswerCitation,
    AnswerStatus,
    Brand,
    BrandScoreAggregate,
    BrandTopic,
    CollectorResult,
    GeneratedQuery,
    JobRun,
    JobRunStatus,
)
from core.db.types import utcnow
from core.db.upsert import UpsertResult, rowcount, upsert_rows

# --- brands, topics, queries ----------------------------------------------------------------


def add_brand(session: Session, *, customer_id: uuid.UUID, name: str, competitors: Sequence[str] = (),
              topics: dict[str, Sequence[str]] | None = None) -> Brand:
    """Create a brand with its topics and their queries (what onboarding produces)."""
    if not name.strip():
        raise ValueError("name: a brand name must not be empty")
    brand = Brand(id=uuid.uuid4(), customer_id=customer_id, name=name.strip(),
                  competitors=[c.strip() for c in competitors if c.strip()], created_at=utcnow())
    session.add(brand)
    session.flush()
    for topic_name, queries in (topics or {}).items():
        add_queries(session, brand.id, topic_name, queries)
    return brand


def add_queries(session: Session, brand_id: uuid.UUID, topic_name: str, queries: Sequence[str]) -> BrandTopic:
    topic = session.execute(select(BrandTopic).where(BrandTopic.brand_id == brand_id,
                                                     BrandTopic.name == topic_name)).scalar_one_or_none()
    if topic is None:
        topic = BrandTopic(id=uuid.uuid4(), brand_id=brand_id, name=topic_name, is_active=True, created_at=utcnow())
        session.add(topic)
        session.flush()
    existing = set(session.execute(select(GeneratedQuery.query_text)
                                   .where(GeneratedQuery.brand_id == brand_id)).scalars())
    for text in dict.fromkeys(q.strip() for q in queries if q.strip()):
        if text not in existing:
            session.add(GeneratedQuery(id=uuid.uuid4(), brand_id=brand_id, topic_id=topic.id, query_text=text,
                                       is_active=True, created_at=utcnow()))
    session.flush()
    return topic


def get_brand(session: Session, brand_id: uuid.UUID) -> Brand | None:
    return session.get(Brand, brand_id)


def active_queries(session: Session, brand_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
    """(query id, query text, topic name) of the brand's active queries in active topics."""
    rows = session.execute(
        select(GeneratedQuery.id, GeneratedQuery.query_text, BrandTopic.name)
        .join(BrandTopic, BrandTopic.id == GeneratedQuery.topic_id)
        .where(GeneratedQuery.brand_id == brand_id, GeneratedQuery.is_active, BrandTopic.is_active)
        .order_by(BrandTopic.name, GeneratedQuery.created_at, GeneratedQuery.query_text))
    return [(r[0], r[1], r[2]) for r in rows]


def topics_and_queries(session: Session, brand_id: uuid.UUID) -> list[dict[str, Any]]:
    """The brand's active topics, each with its active queries (the admin API's view)."""
    by_topic: dict[str, list[dict[str, str]]] = {}
    topic_ids: dict[str, str] = {}
    for topic in session.execute(select(BrandTopic).where(BrandTopic.brand_id == brand_id, BrandTopic.is_active)
                                 .order_by(BrandTopic.name)).scalars():
        by_topic[topic.name], topic_ids[topic.name] = [], str(topic.id)
    for query_id, text, topic_name in active_queries(session, brand_id):
        by_topic[topic_name].append({"id": str(query_id), "query_text": text})
    return [{"id": topic_ids[name], "name": name, "queries": queries} for name, queries in by_topic.items()]


# --- job runs ---------------------------------------------------------------------------------


def create_job_run(session: Session, *, brand_id: uuid.UUID, customer_id: uuid.UUID, job_type: str,
                   metadata: dict[str, Any], scheduled_job_id: uuid.UUID | None = None) -> JobRun:
    run = JobRun(id=uuid.uuid4(), brand_id=brand_id, customer_id=customer_id, job_type=job_type,
                 status=JobRunStatus.PENDING, metadata_json=metadata, metrics={}, attempts=0,
                 scheduled_job_id=scheduled_job_id, created_at=utcnow())
    session.add(run)
    session.flush()
    return run


def start_job_run(session: Session, run_id: uuid.UUID, flow_run_id: str | None) -> JobRun:
    """pending (or failed, on a retry) -> processing; counts the attempt."""
    run = session.get(JobRun, run_id, with_for_update=True)
    if run is None:
        raise LookupError(f"job_run_id: no job run {run_id}")
    if run.status in (JobRunStatus.COMPLETED, JobRunStatus.CANCELLED):
        raise ValueError(f"job run {run_id} is already {run.status}")
    run.status, run.attempts, run.flow_run_id = JobRunStatus.PROCESSING, run.attempts + 1, flow_run_id
    run.started_at = run.started_at or utcnow()
    run.error_message, run.finished_at = None, None
    return run


def finish_job_run(session: Session, run_id: uuid.UUID, *, status: str, metrics: dict[str, Any],
                   error: str | None = None) -> None:
    session.execute(update(JobRun).where(JobRun.id == run_id).values(
        status=status, metrics=metrics, error_message=error, finished_at=utcnow()))


def close_runs_of_flow_run(session: Session, flow_run_id: str, *, status: str, error: str) -> int:
    """Close the ``pending``/``processing`` job runs of flow run ``flow_run_id``; returns how many."""
    result = session.execute(update(JobRun).where(
        JobRun.flow_run_id == flow_run_id, JobRun.status.in_([JobRunStatus.PENDING, JobRunStatus.PROCESSING]))
        .values(status=status, error_message=error, finished_at=utcnow()))
    return rowcount(result)


def answers_of_flow_run(session: Session, flow_run_id: str) -> dict[str, int]:
    """What the job runs of flow run ``flow_run_id`` wrote: answers by status (``completed``,
    ``failed``, ``deferred``) and the API calls they made (``api_calls``). Each answer is
    committed as it arrives, so this is what a dead run had done."""
    rows = session.execute(
        select(CollectorResult.status, func.count(), func.coalesce(func.sum(CollectorResult.api_calls), 0))
        .join(JobRun, JobRun.id == CollectorResult.job_run_id)
        .where(JobRun.flow_run_id == flow_run_id).group_by(CollectorResult.status)).all()
    counts = {status.value: 0 for status in AnswerStatus} | {"api_calls": 0}
    for status, n, calls in rows:
        counts[str(status)] = counts.get(str(status), 0) + int(n)
        counts["api_calls"] += int(calls)
    return counts


def list_job_runs(session: Session, *, customer_id: uuid.UUID | None = None, brand_id: uuid.UUID | None = None,
                  status: str | None = None, limit: int = 50) -> list[JobRun]:
    query = select(JobRun).order_by(JobRun.created_at.desc(), JobRun.id).limit(limit)
    if customer_id:
        query = query.where(JobRun.customer_id == customer_id)
    if brand_id:
        query = query.where(JobRun.brand_id == brand_id)
    if status:
        query = query.where(JobRun.status == status)
    return list(session.execute(query).scalars())


# --- answers ----------------------------------------------------------------------------------


def run_answers(session: Session, run_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
    """(query id, collector, status) of every answer row of this run."""
    rows = session.execute(select(CollectorResult.query_id, CollectorResult.collector, CollectorResult.status)
                           .where(CollectorResult.job_run_id == run_id))
    return [(r[0], r[1], r[2]) for r in rows]


def deferred_answers(session: Session, brand_id: uuid.UUID) -> list[Any]:
    """The brand's deferred answers (id, job_run_id, query_id, collector, not_before), oldest first."""
    return list(session.execute(
        select(CollectorResult.id, CollectorResult.job_run_id, CollectorResult.query_id, CollectorResult.collector,
               CollectorResult.not_before)
        .where(CollectorResult.brand_id == brand_id, CollectorResult.status == AnswerStatus.DEFERRED)
        .order_by(CollectorResult.collected_at, CollectorResult.id)).all())


def take_deferred(session: Session, answer_id: uuid.UUID, run_id: uuid.UUID, *, now: datetime,
                  lease_until: datetime) -> bool:
    """A due deferred answer becomes run ``run_id``'s (which asks it again), held until
    ``lease_until``; False when it is not due (any more): another run took it first."""
    taken = session.execute(
        update(CollectorResult)
        .where(CollectorResult.id == answer_id, CollectorResult.status == AnswerStatus.DEFERRED,
               or_(CollectorResult.not_before.is_(None), CollectorResult.not_before <= now))
        .values(job_run_id=run_id, not_before=lease_until).execution_options(synchronize_session=False))
    return rowcount(taken) == 1


def save_answer(session: Session, row: dict[str, Any]) -> UpsertResult:
    """Insert or replace the answer of (run, query, collector)."""
    return save_answers(session, [row])


def save_answers(session: Session, rows: Sequence[dict[str, Any]]) -> UpsertResult:
    """Insert or replace the answers of (run, query, collector) in one statement; the rows
    have the same keys (a completed and a failed answer do)."""
    if not rows:
        return UpsertResult()
    keys = ("job_run_id", "query_id", "collector")
    return upsert_rows(session, CollectorResult.__table__, rows, conflict_columns=keys,
                       update_columns=[k for k in rows[0] if k not in (*keys, "id")])


def answers_to_score(session: Session, brand_id: uuid.UUID, column: str, limit: int,
                     run_id: uuid.UUID | None = None) -> list[CollectorResult]:
    """Completed answers not yet scored for ``column`` (positions/sentiment): those of
    ``run_id`` first (a collect-and-score run scores what it collected), then the oldest.
    Locked (FOR UPDATE SKIP LOCKED on PostgreSQL) so two scoring runs never share one."""
    scored_at = getattr(CollectorResult, column)
    own_first = case((CollectorResult.job_run_id == run_id, 0), else_=1) if run_id else literal(1)
    return list(session.execute(
        select(CollectorResult).where(CollectorResult.brand_id == brand_id, CollectorResult.status == AnswerStatus.COMPLETED,
                                      scored_at.is_(None))
        .order_by(own_first, CollectorResult.collected_at, CollectorResult.id).limit(limit)
        .with_for_update(skip_locked=True)).scalars())


def save_scores(session: Session, rows: Sequence[dict[str, Any]], update_columns: Sequence[str]) -> UpsertResult:
    return upsert_rows(session, AnswerBrandScore.__table__, rows,
                       conflict_columns=["collector_result_id", "brand_name"], update_columns=update_columns)


def save_citations(session: Session, rows: Sequence[dict[str, Any]]) -> UpsertResult:
    return upsert_rows(session, AnswerCitation.__table__, rows, conflict_columns=["collector_result_id", "url"])


def mark_scored(session: Session, ids: Sequence[uuid.UUID], column: str, at: datetime) -> None:
    if ids:
        session.execute(update(CollectorResult).where(CollectorResult.id.in_(ids)).values({column: at}))


def score_rows(session: Session, answer_ids: Sequence[uuid.UUID]) -> list[AnswerBrandScore]:
    if not answer_ids:
        return []
    return list(session.execute(select(AnswerBrandScore)
                                .where(AnswerBrandScore.collector_result_id.in_(answer_ids))).scalars())


def save_aggregates(session: Session, rows: Sequence[dict[str, Any]]) -> UpsertResult:
    return upsert_rows(session, BrandScoreAggregate.__table__, rows, conflict_columns=["job_run_id", "brand_name"])


def latest_scores(session: Session, brand_id: uuid.UUID) -> list[BrandScoreAggregate]:
    """The aggregates of the brand's most recent scored run."""
    last = session.execute(select(func.max(BrandScoreAggregate.computed_at))
                           .where(BrandScoreAggregate.brand_id == brand_id)).scalar_one_or_none()
    if last is None:
        return []
    run_id = session.execute(select(BrandScoreAggregate.job_run_id).where(
        BrandScoreAggregate.brand_id == brand_id, BrandScoreAggregate.computed_at == last).limit(1)).scalar_one()
    return list(session.execute(select(BrandScoreAggregate).where(BrandScoreAggregate.job_run_id == run_id)
                                .order_by(BrandScoreAggregate.share_of_voice.desc(),
                                          BrandScoreAggregate.brand_name)).scalars())
