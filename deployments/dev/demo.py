"""`make demo`: the jobs end to end on the embedded defaults.

Starts the RapidAPI and CoinGecko sandboxes, queues pending URNs (two of them troublesome
on purpose), runs ``profile_fetcher`` once on a long-lived local Prefect server
(``deployments.dev.local_server``) and prints what
happened (entry statuses, API calls, quota left, where the objects and the e-mail went);
then runs the three crypto jobs, the four Riot jobs, a brand data_collection_and_scoring
run with its per-brand schedule, and the application job queue (jobs started in a
transaction, a worker, progress, a scheduled job; ``deployments.dev.demo_jobqueue``), and
prints what each did.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

DEMO_URNS = [f"ACoAADemo{i:04d}" for i in range(20)]
FLAKY_URN = "ACoAADemo0003"  # gets HTTP 429 twice, then succeeds: shows the backoff
MISSING_URN = "ACoAADemoGone"  # HTTP 404: shows a FAILED entry with its reason


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def main() -> int:
    from deployments.dev.local_server import use

    # Before Prefect is imported: every flow below talks to one long-lived local server
    # instead of starting an ephemeral API (``make down`` stops it).
    api_url = use()
    print(f"Prefect API {api_url} (UI {api_url.removesuffix('/api')}); `make down` stops the local server")

    from sandbox.rapidapi import RapidApiKnobs, RapidApiSandbox, create_app
    from sandbox.server import start_in_thread

    sandbox = RapidApiSandbox(RapidApiKnobs(
        latency_ms=20, rate_limit_first={FLAKY_URN: 2}, retry_after_seconds=1,
        missing_urns=[MISSING_URN],
    ))
    server = start_in_thread(create_app(sandbox), port=8081 if _port_free(8081) else 0)
    os.environ["RAPIDAPI_BASE_URL"] = server.url
    os.environ.setdefault("RAPIDAPI_KEY", sandbox.knobs.api_key)

    from sqlalchemy import func, select

    from core.db import session_scope
    from core.db.migrate import ensure_schema
    from core.notify import read_outbox
    from core.profiles import entries, quota
    from core.profiles.models import Profile
    from core.runs.models import JobExecutionHistory
    from core.settings import get_settings
    from flows.profiles import PROVIDER, profile_fetcher

    settings = get_settings()
    url = settings.database_url
    ensure_schema(url)
    with session_scope(url) as session:
        added = entries.add_pending(session, [*DEMO_URNS, MISSING_URN])
    print(f"database  {url}\nsandbox   {server.url}\nqueued    {added} new PENDING entries")

    try:
        summary = asyncio.run(profile_fetcher(batch_size=settings.cron.batch_size))
    except Exception as exc:  # the run is recorded either way; show it
        print(f"run ended with {type(exc).__name__}: {exc}")
        summary = None
    finally:
        server.stop()

    with session_scope(url) as session:
        counts = entries.count_by_status(session)
        profiles = session.execute(select(func.count()).select_from(Profile)).scalar_one()
        run = session.execute(select(JobExecutionHistory).order_by(
            JobExecutionHistory.id.desc()).limit(1)).scalar_one()
        state = quota.get_state(session, provider=PROVIDER, period=quota.current_period(session, settings.cron))
    outbox = read_outbox(settings.outbox_dir)
    print("\n== profile_fetcher ==")
    print(f"run status      {run.status} (flow run {run.flow_run_id})")
    print(f"entries         {dict(sorted(counts.items()))}")
    print(f"this run        processed {run.total_processed}, ok {run.successful_count}, "
          f"failed {run.failed_count}, API calls {run.api_calls_made}")
    if run.error_summary:
        print(f"errors          {run.error_summary}")
    if state:
        print(f"quota           {state.calls_used}/{state.monthly_limit} used this period "
              f"(since the reset at {state.period}), {state.remaining} left")
    print(f"profiles table  {profiles} rows")
    print(f"objects         {settings.storage_url}/profiles/")
    where = f"SMTP {settings.smtp.host}:{settings.smtp.port}" if settings.smtp.host else (
        str(outbox[-1]) if outbox else "(none)")
    print(f"e-mail          {where}")
    crypto_ok = _crypto_demo()
    riot_ok = _riot_demo()
    brand_ok = _brand_demo()
    from deployments.dev import demo_jobqueue

    jobs_ok = demo_jobqueue.run()
    _ops_hint(api_url)
    return 0 if (summary is not None or run.status != "FAILED") and crypto_ok and riot_ok and brand_ok \
        and jobs_ok else 1


DEMO_CUSTOMER = "9b1f3a52-0000-4000-8000-00000000de70"


def _ops_hint(api_url: str) -> None:
    """Where to look next: the Prefect UI of the server the demo used, and how to start the
    operations page and API (not started here: they would outlive the demo) with this
    installation's token."""
    from deployments.dev import stack

    print("\n== where to look ==")
    print(f"Prefect UI      {api_url.removesuffix('/api')}   (every run above, its state, logs and artifacts)")
    print("operations      uv run jobpipes up   # adds the sandboxes, serve and the operations API + page:")
    print(f"                http://127.0.0.1:{stack.API_PORT}/admin and /docs (or the free port it prints)")
    print(f"token           {stack.token()}   (this installation's, in {stack.TOKEN}; BRAND_ADMIN_TOKEN wins)")
    print("stop            make down")


def _brand_demo() -> bool:
    """Seed 003: a brand with topics and queries, a per-brand schedule on the brand-job
    deployment, one data_collection_and_scoring run against the collectors sandbox, and
    the brand's scores."""
    import uuid

    from sqlalchemy import select

    from sandbox.collectors import CollectorsSandbox, create_app
    from sandbox.server import start_in_thread

    server = start_in_thread(create_app(CollectorsSandbox()), port=8083 if _port_free(8083) else 0)
    for name, value in (("OPENAI_BASE_URL", server.url), ("PERPLEXITY_BASE_URL", server.url),
                        ("SERPAPI_BASE_URL", server.url), ("OPENAI_API_KEY", "sk-demo"),
                        ("PERPLEXITY_API_KEY", "pplx-demo"), ("SERPAPI_API_KEY", "serp-demo")):
        os.environ.setdefault(name, value)
    from core.settings import get_settings

    get_settings.cache_clear()
    from core.brands import repo
    from core.brands.models import Brand
    from core.db import session_scope
    from deployments.control import brand_admin
    from flows.brands import brand_job
    from tasks.brands import scores_of

    url = get_settings().database_url
    customer = uuid.UUID(DEMO_CUSTOMER)
    with session_scope(url) as session:
        brand = session.execute(select(Brand).where(Brand.customer_id == customer)).scalar_one_or_none()
        if brand is None:
            brand = repo.add_brand(session, customer_id=customer, name="Acme CRM",
                                   competitors=["Globex", "Initech", "Umbrella", "Hooli"], topics={
                                       "crm software": ["best CRM for a small business",
                                                        "which CRM has the best customer support"],
                                       "pricing": ["cheapest CRM with email automation"]})
        brand_id = str(brand.id)
    print("\n== brand data collection and scoring (collectors sandbox) ==")
    ok = True
    try:
        metadata = {"collectors": ["chatgpt", "google_aio", "perplexity"], "parallel": True,
                    "positionLimit": 50, "sentimentLimit": 50}
        jobs = asyncio.run(brand_admin.list_scheduled_jobs(brand_id=brand_id))
        job = jobs[0] if jobs else asyncio.run(brand_admin.create_scheduled_job(
            brand_id=brand_id, customer_id=DEMO_CUSTOMER, job_type="data_collection_and_scoring",
            cron_expression="0 9 * * *", timezone="Europe/Paris", metadata=metadata))
        print(f"schedule        {job['cron_expression']} ({job['timezone']}) on brand-job/brand-job, "
              f"next run {job['next_run_time']}")
        result = asyncio.run(brand_job(brand_id, DEMO_CUSTOMER, "data_collection_and_scoring",
                                       metadata=job["metadata"], scheduled_job_id=job["id"]))
        collected = result.metrics.custom["result"]["data_collection"]
        print(f"run             {result.status}: {collected['successful_executions']} answers from "
              f"{collected['queries_executed']} queries x {len(collected['collectors'])} collectors, "
              f"{collected['api_calls']} API calls, {result.duration_ms} ms")
        print(f"{'brand':<12} {'visibility':>10} {'share of voice':>15} {'first mention':>14} {'avg position':>13}"
              f" {'sentiment':>10}")
        for row in scores_of(brand_id):
            position = f"{row['average_position']:.2f}" if row["average_position"] is not None else "-"
            sentiment = f"{row['average_sentiment']:+.2f}" if row["average_sentiment"] is not None else "-"
            print(f"{row['brand'] + (' *' if row['own'] else ''):<12} {row['visibility']:>10.0%} "
                  f"{row['share_of_voice']:>15.0%} {row['first_mention_rate']:>14.0%} {position:>13} {sentiment:>10}")
    except Exception as exc:  # recorded in job_runs and job_execution_history either way
        print(f"brand job failed: {type(exc).__name__}: {exc}")
        ok = False
    finally:
        server.stop()
    return ok


def _riot_demo() -> bool:
    """Track a few players in the Riot sandbox (dev-key limits), run the four seed-001 jobs,
    and show who was flagged and why."""
    from sqlalchemy import select, update

    from core.db import session_scope
    from core.db.job_configurations import JobConfiguration
    from core.db.types import utcnow
    from core.riot.client import reset_pacers
    from core.riot.models import RiotPlayer, SmurfAnalysis
    from core.settings import get_settings
    from sandbox.riot import RiotSandbox, create_app, plays_like_smurf, puuid_of
    from sandbox.server import start_in_thread

    server = start_in_thread(create_app(RiotSandbox()), port=8083 if _port_free(8083) else 0)
    os.environ["RIOT_BASE_URL_TEMPLATE"] = server.url + "/{route}"
    get_settings.cache_clear()
    reset_pacers()
    url = get_settings().database_url
    candidates = [f"DemoPlayer{i}#NA1" for i in range(200)]
    smurfs = [n for n in candidates if plays_like_smurf(puuid_of(n))][:2]
    names = smurfs + [n for n in candidates if n not in smurfs][:4]
    with session_scope(url) as session:
        session.execute(update(JobConfiguration).where(JobConfiguration.job_type == "TRACKED_PLAYER_UPDATER")
                        .values(config_json={"platform": "na1", "max_new_matches_per_player": 10,
                                             "max_tracked_players": 6}))
        session.execute(update(JobConfiguration).where(JobConfiguration.job_type == "MATCH_FETCHER")
                        .values(config_json={"platform": "na1", "discovered_players_per_run": 2,
                                             "matches_per_player_per_run": 3, "target_matches_per_player": 3}))
        known = set(session.execute(select(RiotPlayer.puuid)).scalars())
        now = utcnow()
        for name in names:
            if puuid_of(name) not in known:
                session.add(RiotPlayer(puuid=puuid_of(name), platform="na1", game_name=name.split("#")[0],
                                       tag_line="NA1", is_tracked=True, matches_fetched=0, next_match_offset=0,
                                       is_exhausted=False, discovered_at=now, updated_at=now))
    from flows.riot import ban_checker, match_fetcher, smurf_analyzer, tracked_player_updater

    print("\n== Riot jobs (Riot sandbox, dev-key limits 20/1 s, 100/120 s) ==")
    ok = True
    try:
        for job in (tracked_player_updater, match_fetcher, smurf_analyzer, ban_checker):
            result = asyncio.run(job())
            if result is None:
                continue
            c = result.metrics.custom
            print(f"{result.job_name:<24} {result.status:<12} api requests {c.get('api_requests_made', 0)}, "
                  f"records created {c.get('records_created', 0)}, updated {c.get('records_updated', 0)}")
    except Exception as exc:
        print(f"riot job failed: {type(exc).__name__}: {exc}")
        ok = False
    finally:
        server.stop()
    with session_scope(url) as session:
        flagged = session.execute(select(SmurfAnalysis).where(SmurfAnalysis.is_flagged.is_(True))
                                  .order_by(SmurfAnalysis.score.desc()).limit(5)).scalars().all()
        for a in flagged:
            fired = ", ".join(f"{k}={v['value']}" for k, v in a.signals.items() if v["fired"])
            print(f"flagged {a.puuid[:12]}…  score {a.score:.2f} over {a.games} games: {fired}")
        if not flagged:
            print("no player flagged")
    return ok


def _crypto_demo() -> bool:
    """Run the three seed-004 jobs against the CoinGecko sandbox and print their results."""
    from sandbox.coingecko import CoinGeckoSandbox, create_app
    from sandbox.server import start_in_thread

    server = start_in_thread(create_app(CoinGeckoSandbox()), port=8082 if _port_free(8082) else 0)
    os.environ["COINGECKO_BASE_URL"] = server.url + "/api/v3"
    os.environ.setdefault("COINGECKO_CALLS_PER_MINUTE", "600")  # the sandbox is not rate-limited
    from core.settings import get_settings

    get_settings.cache_clear()
    from flows.crypto import contract_addresses_collection, price_collection, top_coins_collection

    print("\n== crypto jobs (CoinGecko sandbox) ==")
    ok = True
    try:
        for job, kwargs in ((top_coins_collection, {"limit": 50}), (price_collection, {}),
                            (contract_addresses_collection, {"limit": 10})):
            result = asyncio.run(job(**kwargs))
            m = result.metrics
            print(f"{result.job_name:<30} {result.status:<8} processed {m.items_processed}, "
                  f"created {m.items_created}, updated {m.items_updated}, skipped {m.items_skipped}, "
                  f"{result.duration_ms} ms")
    except Exception as exc:  # recorded in job_execution_history either way
        print(f"crypto job failed: {type(exc).__name__}: {exc}")
        ok = False
    finally:
        server.stop()
    print("run `make demo` again: the second run reports updated, not created")
    return ok


def _main() -> int:
    """``main``, with the usual set-up mistakes (a bad setting, a database that is down) as the
    one line that names them instead of a traceback."""
    from core.db.engine import DatabaseUnreachable
    from core.errors import ConfigError

    try:
        return main()
    except (ConfigError, DatabaseUnreachable) as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
