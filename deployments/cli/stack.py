"""``jobpipes up`` / ``down`` / ``status`` / ``env``: the local stack (``deployments.dev.stack``)."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer

from deployments.cli.common import JsonOption, err, out, print_json
from deployments.dev import stack


def up(sandbox: Annotated[bool, typer.Option("--sandbox/--no-sandbox",
                                             help="start every provider's sandbox and point the jobs at it")] = True,
       serve: Annotated[bool, typer.Option("--serve/--no-serve", help="execute the deployments' runs here")] = True,
       api: Annotated[bool, typer.Option("--api/--no-api", help="the operations API and page")] = True,
       api_port: Annotated[int, typer.Option(help="the operations API's port (a free one when taken)")] = stack.API_PORT,
       as_json: JsonOption = False) -> None:
    """Start the local stack: Prefect server, sandboxes, serve, operations API and page.

    What runs already is kept. Prints every URL and the operations API's token."""
    try:
        view = stack.up(sandbox=sandbox, serve=serve, api=api, api_port=api_port,
                        say=lambda m: err.print(m, markup=False, highlight=False))
    except stack.StackError as exc:
        err.print(f"jobpipes up: {exc}", markup=False, highlight=False)
        err.print("what started before it keeps running; `uv run jobpipes down` stops it", markup=False)
        raise typer.Exit(1) from None
    if as_json:
        print_json(view | {"token": stack.token()})
        return
    _print_status(view)
    out.print(f"{'token':<24}{stack.token()}  (from {view['token_source']})", highlight=False)
    out.print(f"{'this shell':<24}eval \"$(uv run jobpipes env)\"   # for curl, prefect and notebooks",
              highlight=False)


def down(keep_server: Annotated[bool, typer.Option(help="leave the Prefect server running")] = False) -> None:
    """Stop what `jobpipes up` started."""
    stopped = stack.down(keep_server=keep_server)
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", highlight=False)


def status(as_json: JsonOption = False) -> None:
    """What runs where: each part's state, URL, pid and log."""
    view = stack.status()
    if as_json:
        print_json(view)
        return
    _print_status(view)
    if not any(p["running"] for p in view["parts"]):
        raise typer.Exit(1)


def env() -> None:
    """Export lines that point a shell (or a notebook started from it) at the running stack."""
    values: dict[str, str] = stack.environment()
    if not values:
        err.print("the stack is not running: `uv run jobpipes up` starts it", markup=False)
        raise typer.Exit(1)
    values[stack.TOKEN_ENV] = stack.token()
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")


def _print_status(view: dict[str, Any]) -> None:
    labels = {"prefect": "Prefect UI", "sandboxes": "sandboxes", "serve": "serve", "api": "operations API"}
    for part in view["parts"]:
        state = "running" if part["running"] else "STOPPED"
        where = part["url"] or ""
        if part.get("urls"):
            where = "  ".join(f"{k} {v}" for k, v in part["urls"].items())
        out.print(f"{labels.get(part['name'], part['name']):<15}{state:<9}{where}", highlight=False)
        out.print(f"{'':<24}pid {part['pid'] or '-'}, log {part['log'] or '-'}", highlight=False, style="dim")
    if view["page_url"]:
        out.print(f"{'operator page':<24}{view['page_url']}\n{'API docs':<24}{view['docs_url']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down``, ``status`` and ``env``; every command takes the stack's environment."""
    for command in (up, down, status, env):
        app.command()(command)
