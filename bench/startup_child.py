"""One fresh process of ``bench.startup_bench``: imports, runs ``profile_fetcher`` on an empty
queue, and prints where its time went as one JSON line (wall-clock ``time.time()`` stamps, so
the parent can add what it saw before the first line and after the last one).

    python bench/startup_child.py [--gc-freeze] [--no-run]   # PYTHONPATH: the checkout

``--gc-freeze`` tries what ``flows/__init__.py`` now does (kept for comparison runs): no
cyclic garbage collection while the imports build Prefect's heap, then ``gc.freeze()`` so
that neither later collections nor the interpreter's exit walk that heap again.
"""

from __future__ import annotations

import time

STARTED = time.time()

import gc  # noqa: E402
import sys  # noqa: E402

GC_FREEZE = "--gc-freeze" in sys.argv
if GC_FREEZE:
    gc.disable()

import asyncio  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402

import prefect  # noqa: E402, F401

PREFECT = time.time()
import flows.profiles as fp  # noqa: E402

IMPORTED = time.time()
if GC_FREEZE:
    gc.freeze()
    gc.enable()


def main() -> None:
    from prefect import Task

    stamps: dict[str, float] = {}
    tasks: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        async def run(*args: Any, **kwargs: Any) -> Any:
            began = time.time()
            try:
                return await fn(*args, **kwargs)
            finally:
                tasks[name] = tasks.get(name, 0.0) + time.time() - began
        return run

    # Every task the flow calls, and finish_run (history, artifact, e-mail): module globals of
    # flows.profiles, looked up at call time, so wrapping them here times each call.
    for name, value in list(vars(fp).items()):
        if isinstance(value, Task) or name == "finish_run":
            setattr(fp, name, timed(name, value))

    def mark(key: str) -> Any:
        def hook(*_: Any) -> None:
            stamps.setdefault(key, time.time())
        return hook

    flow = fp.profile_fetcher.with_options(on_running=[mark("running")], on_completion=[mark("final")],
                                           on_failure=[mark("final")])
    began = time.time()
    asyncio.run(flow(batch_size=5))
    ended = time.time()
    print(json.dumps({"started": STARTED, "prefect": PREFECT, "imported": IMPORTED, "run": began,
                      "running": stamps.get("running", began), "final": stamps.get("final", ended),
                      "ended": ended, "tasks": tasks}), flush=True)


if __name__ == "__main__":
    if "--no-run" in sys.argv:
        print(json.dumps({"started": STARTED, "prefect": PREFECT, "imported": IMPORTED}), flush=True)
    else:
        main()
