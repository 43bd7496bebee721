"""Brands as the admin API and ``jobpipes brands`` manage them: create one with its topics,
queries and competitors, list and show them with their scheduled jobs, and give a brand
its schedule (through ``brand_admin``, so the Prefect schedule follows).

A brand is a customer's name tracked in AI answers against its competitors; a topic groups
the brand's generated queries (the questions put to each collector). Every bad input
raises ConfigError whose message starts with the field's name; a brand name the customer
already uses raises BrandExists (a 409); an unknown brand raises UnknownIdError (a 404).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.brands import repo
from core.brands.models import Brand, BrandTopic, GeneratedQuery
from core.brands.schemas import parse_job_type, parse_uuid
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.errors import ConfigError
from deployments.control import brand_admin
from deployments.control.rows import iso
from deployments.control.trigger import JobConflict
from tasks._common import db_url

NAME_LENGTH = 200  # brands.name, brand_topics.name
QUERY_LENGTH = 2000
Topics = Mapping[str, Sequence[str]] | Iterable[tuple[str, Sequence[str]]]


class BrandExists(JobConflict):
    """The customer has a brand of that name already (a 409)."""


def _text(value: Any, field: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{field}: must not be empty")
    text = value.strip()
    if len(text) > most:
        raise ConfigError(f"{field}: at most {most} characters (got {len(text)})")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ConfigError(f"{field}: {text!r} contains a control character")
    return text


def _topics(topics: Topics | None) -> dict[str, list[str]]:
    """Topic -> its queries, names checked, a repeated topic merged; a query under two
    topics is refused (a brand asks each question once)."""
    merged: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    pairs = topics.items() if isinstance(topics, Mapping) else topics or ()
    for name, queries in pairs:
        topic = _text(name, "topics", NAME_LENGTH)
        bucket = merged.setdefault(topic, [])
        for raw in queries or ():
            query = _text(raw, "queries", QUERY_LENGTH)
            if seen.setdefault(query, topic) != topic:
                raise ConfigError(f"queries: {query!r} is under two topics ({seen[query]!r} and {topic!r})")
            if query not in bucket:
                bucket.append(query)
    return merged


async def create_brand(*, customer_id: Any, name: str, competitors: Sequence[str] = (),
                       topics: Topics | None = None) -> dict[str, Any]:
    """A new brand with its topics and queries (all checked first: a bad one creates nothing)."""
    customer = parse_uuid(customer_id, "customer_id")
    brand_name = _text(name, "name", NAME_LENGTH)
    rivals = list(dict.fromkeys(_text(c, "competitors", NAME_LENGTH) for c in competitors))
    if brand_name in rivals:
        raise ConfigError(f"competitors: {brand_name!r} is the brand itself")
    by_topic: dict[str, Sequence[str]] = dict(_topics(topics))
    taken = BrandExists(f"name: customer {customer} has a brand {brand_name!r} already")
    try:
        with session_scope(db_url()) as session:
            if session.execute(select(Brand.id).where(Brand.customer_id == customer, Brand.name == brand_name)).first():
                raise taken
            brand_id = repo.add_brand(session, customer_id=customer, name=brand_name, competitors=rivals,
                                      topics=by_topic).id
    except IntegrityError:  # the same name created at the same moment
        raise taken from None
    return await get_brand(brand_id)


def _counts(session: Any, brand_ids: list[uuid.UUID]) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """Per brand: its active topics, and the active queries of those (what a run asks)."""
    topics = session.execute(select(BrandTopic.brand_id, func.count()).where(
        BrandTopic.brand_id.in_(brand_ids), BrandTopic.is_active).group_by(BrandTopic.brand_id))
    queries = session.execute(select(GeneratedQuery.brand_id, func.count())
                              .join(BrandTopic, BrandTopic.id == GeneratedQuery.topic_id)
                              .where(GeneratedQuery.brand_id.in_(brand_ids), GeneratedQuery.is_active,
                                     BrandTopic.is_active).group_by(GeneratedQuery.brand_id))
    return dict(topics.tuples().all()), dict(queries.tuples().all())


def _view(brand: Brand, topics: int, queries: int, schedules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": str(brand.id), "customer_id": str(brand.customer_id), "name": brand.name,
            "competitors": list(brand.competitors), "created_at": iso(brand.created_at),
            "topics_count": topics, "queries_count": queries, "schedules": schedules}


async def list_brands(customer_id: Any = None) -> list[dict[str, Any]]:
    """Every brand (of ``customer_id``), by name: counts of active topics and queries, its scheduled jobs."""
    query = select(Brand).order_by(Brand.name, Brand.created_at)
    if customer_id is not None:
        query = query.where(Brand.customer_id == parse_uuid(customer_id, "customer_id"))
    with session_scope(db_url()) as session:
        brands = list(session.execute(query).scalars())
        ids = [b.id for b in brands]
        topics, queries = _counts(session, ids)
        schedules: dict[uuid.UUID | None, list[dict[str, Any]]] = {}
        for row in session.execute(select(ScheduledJob).where(ScheduledJob.brand_id.in_(ids))
                                   .order_by(ScheduledJob.created_at)).scalars():
            schedules.setdefault(row.brand_id, []).append(brand_admin.scheduled_job_view(row))
        return [_view(b, topics.get(b.id, 0), queries.get(b.id, 0), schedules.get(b.id, [])) for b in brands]


async def get_brand(brand_id: Any) -> dict[str, Any]:
    """One brand: its active topics with their queries, competitors and scheduled jobs."""
    with session_scope(db_url()) as session:
        brand = brand_admin.brand_or_unknown(session, brand_id)
        topics = repo.topics_and_queries(session, brand.id)
        schedules = [brand_admin.scheduled_job_view(r) for r in session.execute(
            select(ScheduledJob).where(ScheduledJob.brand_id == brand.id).order_by(ScheduledJob.created_at)).scalars()]
        view = _view(brand, len(topics), sum(len(t["queries"]) for t in topics), schedules)
    return view | {"topics": topics}


async def schedule_brand(brand_id: Any, *, cron_expression: str, timezone: str | None = None,
                         job_type: str = "data_collection_and_scoring", is_active: bool = True,
                         metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create the brand's scheduled job of ``job_type``, or update it when it has one (its
    timezone kept unless given); the Prefect schedule is applied with it. The job's view,
    with ``created``."""
    kind = parse_job_type(job_type)
    with session_scope(db_url()) as session:
        brand = brand_admin.brand_or_unknown(session, brand_id)
        wanted, customer = brand.id, brand.customer_id
        existing = session.execute(select(ScheduledJob.id).where(ScheduledJob.brand_id == wanted,
                                                                 ScheduledJob.job_type == kind)
                                   .order_by(ScheduledJob.created_at).limit(1)).scalar()
    if existing is not None:
        job = await brand_admin.update_scheduled_job(existing, cron_expression=cron_expression, timezone=timezone,
                                                     is_active=is_active, metadata=metadata)
        return job | {"created": False}
    job = await brand_admin.create_scheduled_job(brand_id=wanted, customer_id=customer, job_type=kind,
                                                 cron_expression=cron_expression, timezone=timezone or "UTC",
                                                 is_active=is_active, metadata=metadata)
    return job | {"created": True}
