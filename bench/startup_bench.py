"""Where the start-up of a flow command goes, and what the long-lived local server saves.

Each figure is the median wall time of 3 fresh ``python`` processes (what a CLI call, a
notebook kernel or a demo pays before any work). Writes ``bench/STARTUP_RESULTS.md``.

    uv run python -m bench.startup_bench
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.db.migrate import upgrade
from deployments.local_server import up

ROOT = Path(__file__).resolve().parents[1]
RUN = ("import asyncio\nfrom flows.profiles import profile_fetcher\n"
       "asyncio.run(profile_fetcher(batch_size=5))")


def _median(code: str, env: dict[str, str], n: int = 3) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'app.db'}"
        upgrade(url)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")} | {
            "DATABASE_URL": url, "DATA_DIR": tmp, "NOTIFY_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
        rows = [
            ("python alone", _median("pass", base)),
            ("import prefect", _median("import prefect", base)),
            ("import flows.profiles (prefect, sqlalchemy, httpx, our code)", _median("import flows.profiles", base)),
            ("schema check, before: alembic upgrade on a database at head",
             _median(f"from core.db.migrate import upgrade; upgrade({url!r})", base)),
            ("schema check, now: ensure_schema at head (one query, no Alembic import)",
             _median(f"from core.db.migrate import ensure_schema; ensure_schema({url!r})", base)),
            ("profile_fetcher on an empty queue, ephemeral API (before)", _median(RUN, base)),
        ]
        api_url = up()
        rows.append(("profile_fetcher on an empty queue, long-lived local server (now)",
                     _median(RUN, base | {"PREFECT_API_URL": api_url})))
    lines = ["# Start-up of a flow command", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this 2-core machine; "
             "median of 3 fresh processes (`uv run python -m bench.startup_bench`).", "",
             "| what | wall time |", "|---|---|"]
    lines += [f"| {what} | {seconds:.2f} s |" for what, seconds in rows]
    (ROOT / "bench" / "STARTUP_RESULTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
