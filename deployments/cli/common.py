"""What every ``jobpipes`` command shares: the consoles, the exit code for bad input, ``--json``
and the one place that turns a bad job id, parameter or config value into one line on stderr."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from core.brands.schemas import UnknownIdError
from core.db.engine import DatabaseUnreachable
from core.errors import ConfigError
from deployments.control import catalog, trigger

T = TypeVar("T")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

BAD_INPUT = 2
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")]


def sync_call(work: Callable[[], T]) -> T:
    """``call`` for a plain function (the database-only commands)."""
    async def run() -> T:
        return work()

    return call(run)


def call(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work``; a bad job id, parameter or config value is one line on stderr, exit 2."""
    try:
        return asyncio.run(work())
    except catalog.UnknownJob as exc:
        message = str(exc)
        err.print(message if message.startswith("job_id") else f"job_id: {message}", markup=False, highlight=False)
    except (ConfigError, UnknownIdError) as exc:  # an unknown brand, run or topic id too
        err.print(str(exc), markup=False, highlight=False)
    except trigger.JobConflict as exc:
        err.print(str(exc), markup=False, highlight=False)
    except DatabaseUnreachable as exc:  # not bad input: the database is down (exit 1)
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(BAD_INPUT)


def pairs(values: list[str] | None, option: str) -> dict[str, Any]:
    """``k=v`` options as a dict; ``v`` is read as JSON when it is JSON (``5``, ``true``,
    ``["a"]``), else kept as text."""
    parsed: dict[str, Any] = {}
    for value in values or []:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            err.print(f"{option}: expected key=value, got {value!r}", markup=False, highlight=False)
            raise typer.Exit(BAD_INPUT)
        try:
            parsed[key.strip()] = json.loads(raw)
        except ValueError:
            parsed[key.strip()] = raw
    return parsed


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
