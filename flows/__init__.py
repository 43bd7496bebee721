"""Prefect flows, one module per job: orchestration only.

Importing any flow imports Prefect, SQLAlchemy and every table first, with the cyclic
garbage collector paused and what they built frozen afterwards (``gc.freeze``): the
collector would otherwise scan those long-lived objects again and again while they load and
once more when the process exits, about 1 s of a one-off command's start-up and exit here
(bench/STARTUP_RESULTS.md). Frozen objects are never collected; module-level objects live
as long as the process anyway."""

import gc

gc.disable()
try:
    import httpx  # noqa: F401
    import prefect  # noqa: F401
    import sqlalchemy.orm  # noqa: F401

    import core.models  # noqa: F401
finally:
    gc.freeze()
    gc.enable()
