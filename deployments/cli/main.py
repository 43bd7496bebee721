"""``jobpipes``: see ``deployments.cli`` for what each command does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from deployments.cli import families, scaffold, stack
from deployments.cli.common import (
    JsonOption,
    call,
    err,
    out,
    pairs,
    print_json,
    sync_call,
    when,
)
from deployments.control import catalog, overview, queue, runs, sync, trigger
from prefect_api import flow_run_url, wait_for_flow_run

app = typer.Typer(name="jobpipes", no_args_is_help=True, add_completion=False,
                  help="Job pipelines on Prefect: list, run, configure and inspect every job.")


@app.command()
def jobs(family: Annotated[str | None, typer.Option(help="only this family's jobs")] = None,
         as_json: JsonOption = False) -> None:
    """Every job: schedule, next run, last run, the last 24 hours, drift and alarms."""
    view = call(lambda: overview.overview(family))
    if as_json:
        print_json(view)
        return
    table = Table("job", "family", "schedule", "next run", "last run", "24 h", "health", box=None)
    for job in view["jobs"]:
        last = job.get("last_run") or {}
        schedule = f"{job['schedule']} ({job['timezone']})" if job.get("schedule") else "-"
        if not job["active"]:
            schedule += " inactive"
        counts = f"{job.get('runs_24h', 0)} runs, {job.get('failures_24h', 0)} failed"
        health = job["health"] + "".join(f"\n  {a['reason']}" for a in job["alarms"]) \
            + "".join(f"\n  {d}" for d in job["drift"])
        table.add_row(job["id"], job["family"], schedule, when(job.get("next_run")),
                      f"{last.get('status', '-')} {when(last.get('started_at'))}" if last else "never ran",
                      counts, health)
    out.print(table)


@app.command()
def run(job_id: Annotated[str, typer.Argument(metavar="JOB", help="a job id, as `jobpipes jobs` lists it")],
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="a run parameter, key=value")] = None,
        wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the run until it ends")] = True,
        accept_partial: Annotated[bool, typer.Option(help="exit 0 on PARTIAL too")] = False,
        timeout: Annotated[float, typer.Option(help="seconds to follow the run")] = 3600.0,
        as_json: JsonOption = False) -> None:
    """Start a run of JOB now through its deployment; follow it and print its JobResult.

    Exit code 0 when the run ends SUCCESS (or PARTIAL with --accept-partial), 1 otherwise."""
    parameters = pairs(param, "--param")
    started = call(lambda: trigger.trigger(catalog.get_job(job_id), parameters))
    if not wait:
        print_json(started) if as_json else out.print(
            f"{job_id}: flow run {started['flow_run_id']} {started['state']}\n{started['flow_run_url'] or ''}")
        return
    if not as_json:
        err.print(f"{job_id}: flow run {started['flow_run_id']} started; {started['flow_run_url'] or ''}",
                  markup=False, highlight=False)
    with err.status(f"{job_id} running", spinner="dots") if not as_json else contextlib.nullcontext():
        flow_run = asyncio.run(wait_for_flow_run(uuid.UUID(started["flow_run_id"]), timeout))
    result = runs.job_result_for(started["flow_run_id"])
    state = flow_run.state_name or "unknown"
    status = result.status if result is not None else state.upper()
    if as_json:
        print_json({**started, "state": state, "result": result.model_dump(mode="json") if result else None})
    else:
        _print_result(job_id, state, result)
    ok = status == "SUCCESS" or (accept_partial and status == "PARTIAL")
    raise typer.Exit(0 if ok else 1)


def _print_result(job_id: str, state: str, result: Any) -> None:
    if result is None:
        out.print(f"{job_id}: Prefect state {state}; the run wrote no history row (see its logs in the Prefect UI)")
        return
    m = result.metrics
    out.print(f"[bold]{job_id}: {result.status}[/bold] in {result.duration_ms / 1000:.1f} s (Prefect: {state})")
    out.print(f"  processed {m.items_processed}, created {m.items_created}, updated {m.items_updated}, "
              f"skipped {m.items_skipped}", highlight=False)
    extra = {k: v for k, v in m.custom.items() if k not in ("params", "result") and not isinstance(v, dict | list)}
    if extra:
        out.print("  " + ", ".join(f"{k} {v}" for k, v in extra.items()), highlight=False)
    if result.error:
        out.print(f"  error: {result.error}", markup=False, highlight=False)
    if result.flow_run_id:
        out.print(f"  {flow_run_url(result.flow_run_id) or ''}", highlight=False)


@app.command()
def history(job_id: Annotated[str, typer.Argument(metavar="JOB")],
            status: Annotated[str | None, typer.Option(help="only runs with this status (SUCCESS, PARTIAL...)")] = None,
            since: Annotated[datetime | None, typer.Option(help="only runs started at or after (ISO time)")] = None,
            limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
            as_json: JsonOption = False) -> None:
    """JOB's runs, newest first, from its history table."""
    async def read() -> dict[str, Any]:
        job = catalog.get_job(job_id)
        return runs.list_executions(job, status=status, since=since, limit=limit)

    page = call(read)
    if as_json:
        print_json(page)
        return
    table = Table("started", "status", "duration", "processed", "failed", "api calls", "error", box=None)
    for item in page["items"]:
        counts = item.get("counts") or {}
        table.add_row(when(item.get("started_at")), item["status"],
                      f"{(item.get('duration_ms') or 0) / 1000:.1f} s", str(counts.get("processed", "-")),
                      str(counts.get("failed", "-")), str(item.get("api_calls", "-")), (item.get("error") or "")[:80])
    out.print(table)
    out.print(f"{len(page['items'])} of {page['total']} runs", highlight=False)


@app.command()
def config(job_id: Annotated[str, typer.Argument(metavar="JOB")],
           schedule: Annotated[str | None, typer.Option(help="a 5-field cron expression")] = None,
           timezone: Annotated[str | None, typer.Option(help="an IANA zone, e.g. Europe/Paris")] = None,
           active: Annotated[bool | None, typer.Option("--active/--inactive", help="schedule on or off")] = None,
           set_: Annotated[list[str] | None, typer.Option("--set", help="a config knob, key=value")] = None,
           as_json: JsonOption = False) -> None:
    """Show JOB's configuration, or change it (applied to its Prefect deployment at once)."""
    knobs = pairs(set_, "--set")
    changes: dict[str, Any] = {k: v for k, v in
                               {"schedule": schedule, "timezone": timezone, "active": active}.items() if v is not None}

    async def apply() -> dict[str, Any]:
        job = catalog.get_job(job_id)
        if knobs:
            current = await sync.job_config(job)
            changes["config"] = {**(current.get("config") or {}), **knobs}
        return await (sync.change_config(job, **changes) if changes else sync.job_config(job))

    view = call(apply)
    if as_json:
        print_json(view)
        return
    out.print(f"[bold]{view['job_id']}[/bold] ({view['family']}): {view['schedule']} ({view['timezone']}), "
              f"{'active' if view['active'] else 'inactive'}")
    for key, value in (view.get("config") or {}).items():
        out.print(f"  {key} = {json.dumps(value, default=str)}", highlight=False)


queue_app = typer.Typer(no_args_is_help=True, help="The application job queue (seed 002): list, show, cancel, retry.")
app.add_typer(queue_app, name="queue")


@queue_app.command("list")
def queue_list(status: Annotated[str | None, typer.Option(help="Pending, Running, Completed, Failed or Cancelled")] = None,
               job_type: Annotated[str | None, typer.Option("--type", help="a job type (full or short name)")] = None,
               since: Annotated[datetime | None, typer.Option(help="only jobs created at or after (ISO time)")] = None,
               limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
               offset: Annotated[int, typer.Option(min=0)] = 0,
               as_json: JsonOption = False) -> None:
    """Job-queue jobs, newest first."""
    page = sync_call(lambda: queue.list_jobs(status=status, job_type=job_type, since=since, limit=limit, offset=offset))
    if as_json:
        print_json(page)
        return
    table = Table("job", "type", "status", "attempts", "created", "progress", "error", box=None)
    for job in page["items"]:
        status_text = job["status"] + (" (cancel requested)" if job["cancel_requested_at"] and
                                       job["status"] == "Running" else "")
        progress = f"{job['progress_percent']}% " if job["progress_percent"] is not None else ""
        table.add_row(job["id"], job["job_type"].rsplit(".", 1)[-1], status_text, str(job["attempts"]),
                      when(job["created_at"]), progress + (job["progress_message"] or "")[:50],
                      (job["error"] or "")[:60])
    out.print(table)
    out.print(f"{len(page['items'])} of {page['total']} jobs", highlight=False)


@queue_app.command("show")
def queue_show(job_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False) -> None:
    """One job: its data, status, progress, error and Prefect run."""
    job = sync_call(lambda: queue.get(job_id))
    print_json(job) if as_json else _print_queue_job(job)


@queue_app.command("cancel")
def queue_cancel(job_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False) -> None:
    """Cancel a Pending job now, or ask a Running one to stop (its handler sees the request)."""
    job = sync_call(lambda: queue.cancel(job_id))
    if as_json:
        print_json(job)
    elif job["status"] == "Running":
        out.print(f"{job_id}: cancel requested; its worker stops the handler", highlight=False)
    else:
        out.print(f"{job_id}: {job['status']}", highlight=False)


@queue_app.command("retry")
def queue_retry(job_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False) -> None:
    """A Failed or Cancelled job back to Pending."""
    job = sync_call(lambda: queue.retry(job_id))
    print_json(job) if as_json else out.print(f"{job_id}: {job['status']}", highlight=False)


def _print_queue_job(job: dict[str, Any]) -> None:
    out.print(f"[bold]{job['id']}[/bold] {job['job_type']}: {job['status']} (attempt {job['attempts']})")
    for key in ("created_at", "started_at", "completed_at", "cancel_requested_at", "progress_message",
                "progress_percent", "error", "claimed_by", "flow_run_url"):
        if job.get(key) is not None:
            out.print(f"  {key}: {job[key]}", markup=False, highlight=False)
    out.print(f"  job_data: {json.dumps(job['job_data'], default=str)}", markup=False, highlight=False)


for module in (stack, families, scaffold):
    module.register(app)


if __name__ == "__main__":
    from deployments.cli import main

    main()
