"""Brand data collection and scoring tasks (seed 003): one task per stage, bounded
concurrency inside, every answer written as soon as it arrives.

Every database step rides out an outage (``tasks._common.ride_out_db``): the stages, the
answers' group commit (``tasks.brands.answers``) and the ``job_runs`` bookkeeping."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from sqlalchemy import select

from core.brands import repo, scoring
from core.brands.client import CollectorClient
from core.brands.models import AnswerStatus, JobRun, JobRunStatus
from core.brands.schemas import JobMetadata, parse_uuid
from core.cron import next_run
from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.db.types import utcnow
from core.errors import ConfigError, JobError, RateLimitedError
from core.runs.deferral import not_before
from core.runs.errors import ItemError, item_error
from core.settings import get_settings
from core.storage import dump_json
from tasks._common import db_url, ride_out_db, shared_limits
from tasks.brands.answers import AnswerWriter, plan_pairs
from tasks.storage import open_store


@dataclass(frozen=True)
class BrandWork:
    brand_id: str
    customer_id: str
    name: str
    competitors: list[str]
    queries: list[tuple[str, str]]  # (query id, query text)

    @property
    def tracked(self) -> list[str]:
        """The brand first, then its competitors: the names scored in every answer."""
        return list(dict.fromkeys([self.name, *self.competitors]))


@task(cache_policy=NO_CACHE)
async def load_brand_work(brand_id: str, customer_id: str | None = None) -> BrandWork:
    """The brand, its competitors and its active queries; ConfigError if it does not exist."""
    return await ride_out_db(_brand_work, brand_id, customer_id, what="the brand's queries")


def _brand_work(brand_id: str, customer_id: str | None) -> BrandWork:
    with session_scope(db_url()) as session:
        brand = repo.get_brand(session, uuid.UUID(brand_id))
        if brand is None:
            raise ConfigError(f"brand_id: no brand {brand_id}")
        if customer_id is not None and str(brand.customer_id) != customer_id:
            raise ConfigError(f"customer_id: brand {brand_id} belongs to another customer")
        queries = [(str(q), text) for q, text, _ in repo.active_queries(session, brand.id)]
        return BrandWork(str(brand.id), str(brand.customer_id), brand.name, list(brand.competitors), queries)


def _raw_key(brand_id: str, run_id: str, query_id: str, collector: str) -> str:
    return f"brands/{brand_id}/{run_id}/{query_id}-{collector}.json"


@task(cache_policy=NO_CACHE)
async def collect_answers(run_id: str, work: BrandWork, collectors: list[str], parallel: bool) -> dict[str, Any]:
    """Ask every active query of every selected collector and store each answer.

    ``parallel``: up to ``collectors.concurrency`` requests at once; otherwise one at a
    time, in query order. Pairs already answered in this run (a retried run) are skipped.
    A failing collector fails only its answers (recorded with the error); a rejected key
    (401/403) stops the stage. An answer the collector refused for now (429 after the
    retries) is ``deferred``: not before its ``Retry-After`` (else ``collectors.deferSeconds``,
    at most ``deferMaxSeconds``), when the brand's next run asks it (``tasks.brands.answers``);
    runs before that leave the pair out (``deferred_waiting``).
    """
    settings = get_settings()
    logger = get_run_logger()
    run_uuid = uuid.UUID(run_id)
    url = db_url(settings)
    texts = dict(work.queries)
    plan = await plan_pairs(url, run_uuid, uuid.UUID(work.brand_id),
                            [(qid, c) for qid, _ in work.queries for c in collectors],
                            settings.collectors.defer_seconds)
    pairs = [(qid, texts[qid], c) for qid, c in plan.ask]
    store = open_store(settings.storage_url)
    limit = asyncio.Semaphore(settings.collectors.concurrency if parallel else 1)
    counts = {"successful_executions": 0, "failed_executions": 0, "deferred_executions": 0}
    errors: list[ItemError] = []

    async def one(client: CollectorClient, query_id: str, text: str, collector: str) -> None:
        row = await ask(client, query_id, text, collector)
        # Committed outside the request slot and off the event loop: the next request starts
        # while this answer commits (with the others that arrived meanwhile).
        await writer.write(row)
        counts[_COUNTED[row["status"]]] += 1

    async def ask(client: CollectorClient, query_id: str, text: str, collector: str) -> dict[str, Any]:
        async with limit:
            started = time.monotonic()
            row: dict[str, Any] = {
                "id": uuid.uuid4(), "job_run_id": run_uuid, "brand_id": uuid.UUID(work.brand_id),
                "query_id": uuid.UUID(query_id), "collector": collector, "query_text": text,
                "citations": [], "collected_at": utcnow(), "positions_scored_at": None, "sentiment_scored_at": None,
                "not_before": None}
            try:
                answer = await client.collect(collector, text)
                key = await store.put_bytes(_raw_key(work.brand_id, run_id, query_id, collector),
                                            dump_json(answer.raw))
                row |= {"status": AnswerStatus.COMPLETED.value, "answer_text": answer.answer_text, "raw_key": key,
                        "citations": [{"url": c.url, "domain": c.domain, "title": c.title} for c in answer.citations],
                        "latency_ms": answer.latency_ms, "api_calls": answer.api_calls, "error": None}
            except JobError as exc:
                if exc.fatal:
                    raise
                row |= {"status": AnswerStatus.FAILED.value, "answer_text": None, "raw_key": None,
                        "latency_ms": int((time.monotonic() - started) * 1000),
                        "api_calls": getattr(exc, "attempts", 0), "error": f"{type(exc).__name__}: {exc}"}
                if isinstance(exc, RateLimitedError):  # "later", not "never": the next run past it asks again
                    row |= {"status": AnswerStatus.DEFERRED.value, "not_before": not_before(
                        exc, defer_seconds=settings.collectors.defer_seconds,
                        defer_max_seconds=settings.collectors.defer_max_seconds)}
                    logger.warning("%s deferred query %r until %s: %s", collector, text,
                                   row["not_before"].isoformat(), exc)
                else:
                    errors.append(item_error(f"{collector}: {text}", row["error"]))
                    logger.warning("%s failed for query %r: %s", collector, text, exc)
            return row

    writer = AnswerWriter(url)
    try:
        async with CollectorClient(settings.collectors, **shared_limits()) as client:
            if parallel:  # a fatal error (rejected key) cancels the answers still in flight
                try:
                    async with asyncio.TaskGroup() as group:
                        for pair in pairs:
                            group.create_task(one(client, *pair))
                except ExceptionGroup as failed:
                    raise failed.exceptions[0] from None
            else:
                for pair in pairs:
                    await one(client, *pair)
            api_calls = client.api_calls
    finally:  # the answers already received are committed whatever ended the stage
        await writer.close()
    logger.debug("%d answers committed in %d transactions", len(pairs), writer.transactions)
    return {"queries_executed": len({qid for qid, _, _ in pairs}), "executions": len(pairs),
            "skipped_already_collected": plan.done, "deferred_waiting": plan.waiting,
            **counts, "api_calls": api_calls, "collectors": collectors, "parallel": parallel,
            "errors": errors[:50]}


_COUNTED = {AnswerStatus.COMPLETED.value: "successful_executions", AnswerStatus.FAILED.value: "failed_executions",
            AnswerStatus.DEFERRED.value: "deferred_executions"}


@task(cache_policy=NO_CACHE)
async def score_answers(run_id: str, work: BrandWork, position_limit: int, sentiment_limit: int) -> dict[str, Any]:
    """Positions and citations for up to ``position_limit`` unscored answers, sentiment for
    up to ``sentiment_limit``, then the brand-level aggregates of the answers scored now."""
    return await ride_out_db(_score, run_id, work, position_limit, sentiment_limit, what="the scoring")


def _score(run_id: str, work: BrandWork, position_limit: int, sentiment_limit: int) -> dict[str, Any]:
    brands = work.tracked
    brand_uuid, run_uuid = uuid.UUID(work.brand_id), uuid.UUID(run_id)
    now = utcnow()
    # One transaction: a failure (and the task's retry) leaves no answer marked scored
    # without its scores, and no aggregate without its answers.
    with session_scope(db_url()) as session:
        positioned = repo.answers_to_score(session, brand_uuid, "positions_scored_at", position_limit, run_uuid)
        score_rows, citation_rows = [], []
        for answer in positioned:
            text = answer.answer_text or ""
            for s in scoring.score_answer(text, brands, with_sentiment=False):
                score_rows.append({"collector_result_id": answer.id, "brand_id": brand_uuid, "brand_name": s.brand,
                                   "position": s.position, "mentions": s.mentions})
            for c in scoring.extract_citations(text, known=answer.citations or []):
                citation_rows.append({"collector_result_id": answer.id, "brand_id": brand_uuid,
                                      "url": c.url, "domain": c.domain, "title": c.title})
        repo.save_scores(session, score_rows, update_columns=["position", "mentions"])
        citations = repo.save_citations(session, citation_rows)
        repo.mark_scored(session, [a.id for a in positioned], "positions_scored_at", now)

        sentimented = repo.answers_to_score(session, brand_uuid, "sentiment_scored_at", sentiment_limit, run_uuid)
        rows = []
        for answer in sentimented:
            for s in scoring.score_answer(answer.answer_text or "", brands, with_positions=False):
                rows.append({"collector_result_id": answer.id, "brand_id": brand_uuid, "brand_name": s.brand,
                             "mentions": s.mentions, "sentiment": s.sentiment, "sentiment_label": s.sentiment_label})
        repo.save_scores(session, rows, update_columns=["sentiment", "sentiment_label"])
        repo.mark_scored(session, [a.id for a in sentimented], "sentiment_scored_at", now)

        aggregates: list[dict[str, Any]] = []
        if positioned:
            by_answer: dict[uuid.UUID, list[scoring.BrandScore]] = defaultdict(list)
            for r in repo.score_rows(session, [a.id for a in positioned]):
                by_answer[r.collector_result_id].append(
                    scoring.BrandScore(r.brand_name, r.position, r.mentions, r.sentiment, r.sentiment_label))
            frame = scoring.scores_frame((a.id, by_answer[a.id]) for a in positioned)
            table = scoring.aggregate(frame, brands, answers=len(positioned))
            aggregates = [_aggregate_row(rec, run_id, work, now) for rec in table.to_dict("records")]
            repo.save_aggregates(session, aggregates)
    own = next((a for a in aggregates if a["is_own_brand"]), None)
    return {"answers_position_scored": len(positioned), "answers_sentiment_scored": len(sentimented),
            "citations_extracted": citations.created, "brands_scored": len(aggregates),
            "position_limit": position_limit, "sentiment_limit": sentiment_limit,
            "brand": {k: own[k] for k in ("visibility", "share_of_voice", "first_mention_rate", "average_position",
                                          "average_sentiment")} if own else None}


def _none_if_nan(value: Any) -> Any:
    return None if value is None or value != value else float(value)


def _aggregate_row(rec: dict[str, Any], run_id: str, work: BrandWork, now: Any) -> dict[str, Any]:
    return {"job_run_id": uuid.UUID(run_id), "brand_id": uuid.UUID(work.brand_id), "brand_name": rec["brand"],
            "is_own_brand": rec["brand"] == work.name, "answers": int(rec["answers"]),
            "mentioned_answers": int(rec["mentioned_answers"]), "mentions": int(rec["mentions"]),
            "visibility": float(rec["visibility"]), "share_of_voice": float(rec["share_of_voice"]),
            "first_mention_rate": float(rec["first_mention_rate"]),
            "average_position": _none_if_nan(rec["average_position"]),
            "average_sentiment": _none_if_nan(rec["average_sentiment"]), "computed_at": now}


# Job-run bookkeeping of the brand-job flow: not tasks (called from hooks and between
# attempts, where a task run would only add orchestration, and where the record of the run
# must not depend on the Prefect API), each riding out a database outage.


async def open_run(kind: str, brand: uuid.UUID, customer: uuid.UUID, meta: JobMetadata,
                   scheduled_job_id: str | None, job_run_id: str | None, flow_run_id: str | None) -> uuid.UUID:
    """The run's ``job_runs`` row: the one a trigger created, or a new one (a schedule
    firing, a manual run). It carries this flow run's id from the start, so the flow's
    failure, crash and cancellation hooks can always find and close it."""
    return await ride_out_db(_open_run, kind, brand, customer, meta, scheduled_job_id, job_run_id, flow_run_id,
                             what="the job run's row")


def _open_run(kind: str, brand: uuid.UUID, customer: uuid.UUID, meta: JobMetadata,
              scheduled_job_id: str | None, job_run_id: str | None, flow_run_id: str | None) -> uuid.UUID:
    with session_scope(db_url()) as session:
        if job_run_id:
            run_uuid = parse_uuid(job_run_id, "job_run_id")
            run = session.get(JobRun, run_uuid)
            if run is None:
                raise ConfigError(f"job_run_id: no job run {job_run_id}")
            run.flow_run_id = flow_run_id
            return run_uuid
        scheduled = parse_uuid(scheduled_job_id, "scheduled_job_id") if scheduled_job_id else None
        if scheduled is not None:
            row = session.get(ScheduledJob, scheduled)
            if row is None:  # deleted while Prefect still held its schedule: do not run it
                raise ConfigError(f"scheduled_job_id: no scheduled job {scheduled_job_id} (deleted?)")
            now = utcnow()
            row.last_run_time = now
            row.next_run_time = next_run(row.cron_expression, row.timezone, now)
        run = repo.create_job_run(session, brand_id=brand, customer_id=customer, job_type=kind,
                                  metadata=meta.dump(), scheduled_job_id=scheduled)
        run.flow_run_id = flow_run_id
        return run.id


async def set_run(run_id: uuid.UUID, status: str, metrics: dict[str, Any], error: str | None) -> None:
    """The run's row gets ``status``, its metrics and its error."""
    await ride_out_db(_set_run, run_id, status, metrics, error, what=f"the job run's {status} status")


def _set_run(run_id: uuid.UUID, status: str, metrics: dict[str, Any], error: str | None) -> None:
    with session_scope(db_url()) as session:
        repo.finish_job_run(session, run_id, status=status, metrics=metrics, error=error)


async def start_run(run_id: uuid.UUID, flow_run_id: str | None) -> None:
    """The run's row goes ``processing`` under this flow run."""
    await ride_out_db(_start_run, run_id, flow_run_id, what="the job run's start")


def _start_run(run_id: uuid.UUID, flow_run_id: str | None) -> None:
    with session_scope(db_url()) as session:
        repo.start_job_run(session, run_id, flow_run_id)


async def close_open_runs(flow_run_id: str, status: str, error: str) -> None:
    """Close the ``pending``/``processing`` job runs of flow run ``flow_run_id``."""
    await ride_out_db(_close_open_runs, flow_run_id, status, error, what="the open job runs' closing")


def _close_open_runs(flow_run_id: str, status: str, error: str) -> None:
    with session_scope(db_url()) as session:
        repo.close_runs_of_flow_run(session, flow_run_id, status=status, error=error)


async def reconcile_open_runs(older_than: timedelta = timedelta(minutes=1)) -> int:
    """Close job runs still ``pending``/``processing`` whose Prefect flow run has ended.

    The flow's own hooks close its row on failure, crash or cancellation, but not when its
    process was killed outright (SIGKILL, OOM, a lost machine): Prefect then marks the flow
    run crashed from outside. Every brand-job run calls this first; returns rows closed.
    """
    open_runs = await ride_out_db(_open_runs, older_than, what="the open job runs")
    if not open_runs:
        return 0
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[uuid.UUID(r.flow_run_id) for r in open_runs])))
    ended = {str(run.id): run.state for run in flow_runs if run.state is not None and run.state.is_final()}
    for _, flow_run_id in open_runs:
        state = ended.get(str(flow_run_id))
        if state is not None:
            status = JobRunStatus.CANCELLED if state.is_cancelled() else JobRunStatus.FAILED
            await close_open_runs(str(flow_run_id), status, f"its Prefect flow run ended {state.type.value} "
                                   f"({state.message or 'no message'}) without closing it")
    return sum(1 for _, f in open_runs if f in ended)


def _open_runs(older_than: timedelta) -> list[Any]:
    with session_scope(db_url()) as session:
        return list(session.execute(select(JobRun.id, JobRun.flow_run_id).where(
            JobRun.status.in_([JobRunStatus.PENDING, JobRunStatus.PROCESSING]), JobRun.flow_run_id.is_not(None),
            JobRun.created_at < utcnow() - older_than)).all())


def scores_of(brand_id: str) -> list[dict[str, Any]]:
    """The brand's latest brand-level scores (own brand and competitors), best first."""
    with session_scope(db_url()) as session:
        return [{"brand": r.brand_name, "own": r.is_own_brand, "visibility": r.visibility,
                 "share_of_voice": r.share_of_voice, "first_mention_rate": r.first_mention_rate,
                 "average_position": r.average_position, "average_sentiment": r.average_sentiment,
                 "answers": r.answers} for r in repo.latest_scores(session, uuid.UUID(brand_id))]
