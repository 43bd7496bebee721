"""Brand data collection: ``brand-job`` (data_collection) beside a plain asyncio script.

    uv run python -m bench.brand_collection_bench [--queries 40] [--latency-ms 100] [--concurrency 8]

One brand with ``--queries`` active queries, three collectors (ChatGPT, Google AI
Overview, Perplexity) served by the collectors sandbox with ``--latency-ms`` per request.
Each variant starts from an empty SQLite database and object folder, in this process:

- baseline: a plain asyncio script with the same client (``CollectorClient``), the same
  concurrency, the raw JSON written to the same folder and every answer row inserted in
  one transaction at the end (no job run, no history, no retries, no per-answer commit);
- ``brand_job(job_type="data_collection", parallel=True)`` with ``COLLECTORS_CONCURRENCY``;
- the same with ``parallel=False`` (one request at a time, as the seed's sequential mode).

The Prefect variants run after one untimed warm-up run (ephemeral API start, imports).
Results go to bench/BRAND_RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COLLECTORS = ["chatgpt", "google_aio", "perplexity"]


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds so far: this process (all its threads), and its live child processes
    (the ephemeral Prefect API server)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # ppid
            children += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return own.ru_utime + own.ru_stime, children


def _fresh_env(root: Path, sandbox_url: str, concurrency: int) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{root / 'db.sqlite'}", "STORAGE_URL": (root / "objects").as_uri(),
        "DATA_DIR": str(root), "NOTIFY_ENABLED": "false", "COLLECTORS_CONCURRENCY": str(concurrency),
        "OPENAI_BASE_URL": sandbox_url, "PERPLEXITY_BASE_URL": sandbox_url, "SERPAPI_BASE_URL": sandbox_url,
        "OPENAI_API_KEY": "sk-bench", "PERPLEXITY_API_KEY": "pplx-bench", "SERPAPI_API_KEY": "serp-bench"})
    from core.settings import get_settings
    from tasks.storage import open_store

    get_settings.cache_clear()
    open_store.cache_clear()


def _make_brand(queries: int) -> tuple[str, str]:
    from core.brands import repo
    from core.db import session_scope
    from core.db.migrate import ensure_schema
    from core.settings import get_settings

    url = get_settings().database_url
    ensure_schema(url)
    customer = uuid.uuid4()
    with session_scope(url) as session:
        brand = repo.add_brand(session, customer_id=customer, name="Acme CRM",
                               competitors=["Globex", "Initech", "Umbrella", "Hooli"],
                               topics={"crm": [f"best CRM for use case {i}" for i in range(queries)]})
        return str(brand.id), str(customer)


async def baseline(brand_id: str, concurrency: int) -> int:
    """What one would write by hand: gather with a semaphore, one insert at the end."""
    from core.brands import repo
    from core.brands.client import CollectorClient
    from core.brands.models import CollectorResult
    from core.db import session_scope
    from core.db.types import utcnow
    from core.settings import get_settings
    from core.storage import dump_json
    from tasks.storage import open_store

    settings = get_settings()
    url = settings.database_url
    run_id = uuid.uuid4()
    with session_scope(url) as session:
        brand = repo.get_brand(session, uuid.UUID(brand_id))
        queries = repo.active_queries(session, brand.id)  # type: ignore[union-attr]
        run = repo.create_job_run(session, brand_id=brand.id, customer_id=brand.customer_id,  # type: ignore[union-attr]
                                  job_type="data_collection", metadata={})
        run_id = run.id
    store = open_store(settings.storage_url)
    gate = asyncio.Semaphore(concurrency)
    rows: list[dict[str, object]] = []
    async with CollectorClient(settings.collectors) as client:
        async def one(query_id: uuid.UUID, text: str, collector: str) -> None:
            async with gate:
                answer = await client.collect(collector, text)
            key = await store.put_bytes(f"brands/{brand_id}/{run_id}/{query_id}-{collector}.json", dump_json(answer.raw))
            rows.append({"id": uuid.uuid4(), "job_run_id": run_id, "brand_id": uuid.UUID(brand_id),
                         "query_id": query_id, "collector": collector, "query_text": text, "status": "completed",
                         "answer_text": answer.answer_text, "raw_key": key, "latency_ms": answer.latency_ms,
                         "api_calls": answer.api_calls, "collected_at": utcnow(),
                         "citations": [{"url": c.url, "domain": c.domain, "title": c.title} for c in answer.citations]})

        await asyncio.gather(*(one(q, text, c) for q, text, _ in queries for c in COLLECTORS))
    with session_scope(url) as session:
        session.execute(CollectorResult.__table__.insert(), rows)
    return len(rows)


async def flow_variant(brand_id: str, customer_id: str, parallel: bool) -> int:
    from flows.brands import brand_job

    result = await brand_job(brand_id, customer_id, "data_collection",
                             metadata={"collectors": COLLECTORS, "parallel": parallel})
    return int(result.metrics.items_created)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (alternating); the median is kept")
    parser.add_argument("--sequential", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the sequential variant")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from sandbox.collectors import CollectorsKnobs, CollectorsSandbox, create_app
    from sandbox.server import start_in_thread

    server = start_in_thread(create_app(CollectorsSandbox(CollectorsKnobs(latency_ms=args.latency_ms))))
    root = Path(tempfile.mkdtemp(prefix="brand-bench-"))
    answers = args.queries * len(COLLECTORS)
    rows = []
    try:
        # Warm-up: the ephemeral Prefect API, imports, flow registration.
        _fresh_env(root / "warmup", server.url, args.concurrency)
        warm_brand, warm_customer = _make_brand(1)
        t0 = time.perf_counter()
        asyncio.run(flow_variant(warm_brand, warm_customer, True))
        startup = time.perf_counter() - t0
        variants = [("plain asyncio baseline", "baseline"), ("brand-job data_collection, parallel", "parallel")]
        if args.sequential:
            variants.append(("brand-job data_collection, sequential", "sequential"))
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in variants}
        for i in range(args.repeat):
            for name, variant in variants:
                _fresh_env(root / f"{variant}-{i}", server.url, args.concurrency)
                brand_id, customer_id = _make_brand(args.queries)
                cpu0, server0 = _cpu_seconds()
                t0 = time.perf_counter()
                done = (asyncio.run(baseline(brand_id, args.concurrency)) if variant == "baseline" else
                        asyncio.run(flow_variant(brand_id, customer_id, variant == "parallel")))
                wall = time.perf_counter() - t0
                cpu1, server1 = _cpu_seconds()
                assert done == answers, f"{name}: {done} of {answers} answers"
                samples[name].append((wall, cpu1 - cpu0, server1 - server0))
                print(f"{name:<40} {wall:7.2f} s  {done / wall:7.1f} answers/s  cpu {cpu1 - cpu0:5.2f} s "
                      f"+ api server {server1 - server0:5.2f} s")
        for name, _ in variants:
            wall, cpu, api = (statistics.median(x[k] for x in samples[name]) for k in range(3))
            rows.append((name, wall, answers / wall, cpu, api))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    floor = answers / args.concurrency * args.latency_ms / 1000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = "\n".join(f"| {n} | {w:.2f} | {r:.1f} | {c:.2f} | {a:.2f} |" for n, w, r, c, a in rows)
    ratio = rows[1][2] / rows[0][2]
    (PROJECT_ROOT / "bench" / "BRAND_RESULTS.md").write_text(f"""# Brand data collection benchmark

`uv run python -m bench.brand_collection_bench --queries {args.queries} --latency-ms {args.latency_ms:g} \
--concurrency {args.concurrency} --repeat {args.repeat}` (median of {args.repeat}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores,
Python {platform.python_version()}, SQLite, local object folder, collectors sandbox in-process.

{answers} answers ({args.queries} queries x 3 collectors), {args.latency_ms:g} ms per request, {args.concurrency} in
flight. The latency floor with {args.concurrency} in flight is {floor:.2f} s. Prefect start-up (untimed warm-up):
{startup:.1f} s. Peak RSS of the process: {rss:.0f} MB.

| variant | wall s | answers/s | CPU s (process) | CPU s (Prefect API server) |
|---|---:|---:|---:|---:|
{table}

Parallel flow / baseline: {ratio:.2f}x. Load average at the end: {os.getloadavg()[0]:.2f}.

The flow does more than the baseline for the same answers: a `job_runs` row moved through
its statuses, brand and customer concurrency slots (Prefect global concurrency limits),
one commit per answer (a crash loses at most the answers in flight), history row,
artifact and JobResult; the sequential variant is the seed's `parallel: false`.
""")


if __name__ == "__main__":
    main()
