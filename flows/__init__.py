"""Prefect flows, one module per job: orchestration only.

Importing any flow imports Prefect, SQLAlchemy and every table first, with the cyclic
garbage collector paused and what they built frozen afterwards (``gc.freeze``): the
collector would otherwise scan those long-lived objects again and again while they load and
once more when the process exits, about 1 s of a one-off command's start-up and exit here
(bench/STARTUP_RESULTS.md). Frozen objects are never collected; module-level objects live
as long as the process anyway."""

import gc
import json
import os
import sys

from core.config import local_server_dir


def _notebook_server() -> None:
    """In a notebook (IPython) with no ``PREFECT_API_URL``, before Prefect is imported: use this
    checkout's long-lived local server when it runs (``jobpipes up``), else say how to start
    one, instead of a temporary API per kernel (5-15 s, and a time-out on a busy machine)."""
    if "IPython" not in sys.modules or "prefect" in sys.modules or os.environ.get("PREFECT_API_URL"):
        return
    import httpx

    try:
        api_url = str(json.loads((local_server_dir() / "server.json").read_text())["api_url"])
        healthy = httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        healthy = False
    if healthy:
        os.environ["PREFECT_API_URL"] = api_url
        print(f"jobpipes: using the local Prefect server at {api_url} (UI {api_url.removesuffix('/api')})",
              file=sys.stderr)
    else:
        print("jobpipes: no Prefect server is configured, so each flow run starts a temporary one (5-15 s).\n"
              "  Start the long-lived one with `uv run jobpipes up` (or `uv run python -m deployments.dev."
              "local_server up`), then restart the kernel; or set PREFECT_API_URL.", file=sys.stderr)


_notebook_server()
gc.disable()
try:
    import httpx  # noqa: F401
    import prefect  # noqa: F401
    import sqlalchemy.orm  # noqa: F401

    import core.models  # noqa: F401
finally:
    gc.freeze()
    gc.enable()
