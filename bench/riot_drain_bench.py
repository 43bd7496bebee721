"""Drain 300 match fetches under Riot development-key limits (20/1 s and 100/120 s).

    uv run python -m bench.riot_drain_bench [--matches 300] [--concurrency 20]

The Riot sandbox enforces the limits with fixed windows, as Riot does; the client paces
itself from the rate-limit headers. Reports wall time beside the minimum the limits
allow and the number of 429s the sandbox returned. Baseline: the same fetches with a
naive client that fires as fast as it can and sleeps Retry-After on each 429.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

import httpx

from core.riot.client import RiotClient, reset_pacers
from core.riot.settings import RiotSettings
from sandbox.riot import RiotKnobs, RiotSandbox, create_app
from sandbox.server import start_in_thread


def minimum_seconds(n: int) -> float:
    """Lower bound with fixed windows: 100 per 120 s, and within each 100, 20 per second."""
    full, rest = divmod(n, 100)
    last = rest or 100
    return (full - (0 if rest else 1)) * 120 + math.ceil(last / 20) - 1


async def paced(settings: RiotSettings, ids: list[str], concurrency: int) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)
    async with RiotClient(settings) as client:
        async def one(match_id: str) -> None:
            async with gate:
                await client.match("na1", match_id)

        t0 = time.monotonic()
        await asyncio.gather(*(one(m) for m in ids))
        return time.monotonic() - t0, client.api_calls


async def naive(url: str, ids: list[str], concurrency: int) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)
    calls = 0
    async with httpx.AsyncClient(headers={"X-Riot-Token": "RGAPI-sandbox"}) as http:
        async def one(match_id: str) -> None:
            nonlocal calls
            while True:
                async with gate:
                    calls += 1
                    response = await http.get(f"{url}/americas/lol/match/v5/matches/{match_id}")
                if response.status_code != 429:
                    return
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        t0 = time.monotonic()
        await asyncio.gather(*(one(m) for m in ids))
        return time.monotonic() - t0, calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matches", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    ids = [f"NA1_{5_100_000_000 + i}" for i in range(args.matches)]
    rows = []
    for variant in ("paced client", "naive client (Retry-After only)")[: 1 if args.skip_naive else 2]:
        sandbox = RiotSandbox(RiotKnobs(app_limits="20:1,100:120", method_limits="2000:10"))
        with start_in_thread(create_app(sandbox)) as server:
            reset_pacers()
            settings = RiotSettings(apiKey="RGAPI-sandbox", baseUrlTemplate=server.url + "/{route}")
            if variant == "paced client":
                seconds, calls = asyncio.run(paced(settings, ids, args.concurrency))
            else:
                seconds, calls = asyncio.run(naive(server.url, ids, args.concurrency))
            rows.append((variant, seconds, calls, sandbox.statuses[429]))
            print(f"{variant}: {seconds:.1f} s, {calls} calls, {sandbox.statuses[429]} x 429", flush=True)
    floor = minimum_seconds(args.matches)
    print(f"\n{args.matches} match fetches, dev-key limits 20:1,100:120, minimum {floor:.0f} s\n")
    print("| variant | wall time (s) | vs minimum | HTTP calls | 429s |\n|---|---|---|---|---|")
    for variant, seconds, calls, limited in rows:
        print(f"| {variant} | {seconds:.1f} | {seconds / floor:.2f}x | {calls} | {limited} |")


if __name__ == "__main__":
    main()
