"""Overlapping runs on PostgreSQL: no entry fetched twice, the quota never over-granted."""

from __future__ import annotations

import asyncio
import threading

from core.db import session_scope
from core.profiles import entries, quota
from core.settings import get_settings
from flows.profiles import profile_fetcher
from tests.factories import entry_rows, history_rows, ledger, seed_entries, set_quota, urns


def test_concurrent_reservations_never_exceed_the_limit(app_env):
    url = app_env["DATABASE_URL"]
    set_quota(url, limit=100)
    granted: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            with session_scope(url) as session:
                got, _ = quota.reserve(session, provider="rapidapi",
                                       period=quota.current_period(session, get_settings().cron),
                                       requested=3, monthly_limit=100)
            granted.append(got)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 100  # 240 asked for, exactly the limit granted
    assert ledger(url).reserved == 100


def test_concurrent_claims_are_disjoint(app_env):
    url = app_env["DATABASE_URL"]
    seed_entries(url, urns(200))
    claimed: list[list[int]] = []
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        barrier.wait()
        while True:
            with session_scope(url) as session:
                batch = entries.claim_pending(session, limit=7, claimed_by=f"w{n}")
            if not batch:
                return
            claimed.append([e.id for e in batch])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 200


def test_two_overlapping_flow_runs_process_every_entry_once(app_env, rapidapi_sandbox):
    url = app_env["DATABASE_URL"]
    names = urns(40)
    seed_entries(url, names)
    set_quota(url, limit=30)
    rapidapi_sandbox.update_knobs(latency_ms=20)
    results: list[object] = []

    def run() -> None:
        results.append(asyncio.run(profile_fetcher(batch_size=4)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 2
    rows = entry_rows(url)
    completed = [u for u, r in rows.items() if r.status == "COMPLETED"]
    assert len(completed) == 30  # the quota, exactly
    assert all(rows[u].fetch_count == 1 for u in completed)
    per_urn = rapidapi_sandbox.stats()["per_urn"]
    assert all(per_urn.get(u, 0) <= 1 for u in names)  # nobody fetched twice
    assert sum(per_urn.get(u, 0) for u in names) == 30
    q = ledger(url)
    assert (q.calls_used, q.reserved) == (30, 0)
    runs = history_rows(url)
    assert len(runs) == 2 and sum(r.successful_count for r in runs) == 30
