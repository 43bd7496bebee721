"""``jobpipes profiles|quota|riot|brands``: each family's own objects (profile entries, the
quota ledger, Riot players, brands) over the control layer (``deployments.control.families``
and ``deployments.control.brands``), which the operations API shares."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from prefect.logging.handlers import PrefectConsoleHandler
from rich.table import Table

from core.brands.schemas import JOB_TYPES
from core.errors import ConfigError, NotFoundError, ProviderError
from deployments.cli.common import JsonOption, call, err, out, pairs, print_json, sync_call, when
from deployments.control import brands, families

T = TypeVar("T")
Limit = Annotated[int, typer.Option(min=1, max=1000, help="at most this many rows")]

profiles_app = typer.Typer(no_args_is_help=True, help="The LinkedIn profile queue: add URNs, re-queue failures, list.")
quota_app = typer.Typer(no_args_is_help=True, help="The RapidAPI quota ledger: one row per provider and period.")
riot_app = typer.Typer(no_args_is_help=True, help="Riot players: track one by Riot ID, list them with their verdicts.")
brands_app = typer.Typer(no_args_is_help=True, help="Brands: create one with topics, queries and competitors; "
                                                    "list, show, schedule.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    for name, sub in (("profiles", profiles_app), ("quota", quota_app), ("riot", riot_app), ("brands", brands_app)):
        app.add_typer(sub, name=name)


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


@contextlib.contextmanager
def _prefect_console_quiet() -> Iterator[None]:
    """No Prefect console lines (a failed run's traceback) while a flow runs in this process:
    the command prints the outcome; the run's logs still reach the Prefect API."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


# --- profiles ---------------------------------------------------------------------------------

def _read_urns(file: str) -> list[str]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        err.print(f"--file: cannot read {file!r}: {exc.strerror}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@profiles_app.command("add")
def profiles_add(urns: Annotated[list[str] | None, typer.Argument(metavar="URN...", help="LinkedIn URNs")] = None,
                 file: Annotated[str | None, typer.Option("--file", "-f", help="a file of URNs, one a line "
                                                          "('-': stdin; blank lines and # comments skipped)")] = None,
                 as_json: JsonOption = False) -> None:
    """Enqueue URNs as PENDING entries; all are checked first, so one bad URN adds none."""
    given = [*(urns or []), *(_read_urns(file) if file else [])]
    added = sync_call(lambda: families.add_entries(given))
    print_json(added) if as_json else _say(
        f"added {_n(added['added'], 'new PENDING entry', 'new PENDING entries')} ({added['known']} already known)")


@profiles_app.command("requeue-failed")
def profiles_requeue(urns: Annotated[list[str] | None, typer.Argument(metavar="[URN...]", help="only these")] = None,
                     as_json: JsonOption = False) -> None:
    """FAILED entries back to PENDING: all of them, or only the URNs given."""
    done = sync_call(lambda: families.requeue_failed(urns))
    print_json(done) if as_json else _say(
        f"re-queued {_n(done['requeued'], 'FAILED entry', 'FAILED entries')} (now PENDING)")


@profiles_app.command("list")
def profiles_list(status: Annotated[str | None, typer.Option(help="PENDING, FETCHING, COMPLETED or FAILED")] = None,
                  limit: Limit = 20, as_json: JsonOption = False) -> None:
    """Profile entries, most recently changed first, and the count of each status."""
    page = sync_call(lambda: families.list_entries(status=status, limit=limit))
    if as_json:
        print_json(page)
        return
    table = Table("urn", "status", "fetches", "updated", "error", box=None)
    for e in page["items"]:
        table.add_row(e["urn"], e["status"], str(e["fetch_count"]), when(e["updated_at"]), (e["error"] or "")[:70])
    out.print(table)
    _say(f"{len(page['items'])} of {page['total']} entries; " + ", ".join(f"{s} {n}" for s, n in page["counts"].items()))


# --- quota --------------------------------------------------------------------------------------

@quota_app.command("show")
def quota_show(provider: Annotated[str | None, typer.Option(help="only this provider (rapidapi)")] = None,
               period: Annotated[str | None, typer.Option(help="only this period, e.g. 2026-01-15T00:00Z")] = None,
               limit: Limit = 24, as_json: JsonOption = False) -> None:
    """The quota ledger, newest period first; * marks the period the fetcher spends from now."""
    ledger = sync_call(lambda: families.quota_ledger(provider=provider, period=period, limit=limit))
    if as_json:
        print_json(ledger)
        return
    table = Table("provider", "period", "limit", "used", "reserved", "remaining", box=None)
    for row in ledger["items"]:
        mark = " *" if row["period"] == ledger["current_period"] else ""
        table.add_row(row["provider"], row["period"] + mark, *(str(row[k]) for k in ("limit", "used", "reserved",
                                                                                      "remaining")))
    out.print(table)
    if not ledger["items"]:
        _say(f"no ledger row yet; the current period is {ledger['current_period']}")


@quota_app.command("reset")
def quota_reset(monthly_limit: Annotated[int | None, typer.Option(help="the period's limit "
                                                                  "(default rapidapi.monthlyQuota)")] = None,
                reset_usage: Annotated[bool, typer.Option(help="also zero what the period has used")] = False,
                as_json: JsonOption = False) -> None:
    """Run the quota-reset flow here: open (or re-limit) the current period's ledger row."""
    def reset() -> Coroutine[Any, Any, dict[str, Any]]:
        return families.reset_quota(monthly_limit=monthly_limit, reset_usage=reset_usage)

    with _prefect_console_quiet():
        row = call(reset)
    print_json(row) if as_json else _say(
        f"{row['provider']} {row['period']}: limit {row['limit']}, used {row['used']}, reserved {row['reserved']}, "
        f"remaining {row['remaining']} ({row['status']})")


# --- riot -----------------------------------------------------------------------------------------

@riot_app.command("track")
def riot_track(riot_id: Annotated[str, typer.Argument(metavar="NAME#TAG", help="a Riot ID, e.g. 'Faker#KR1'")],
               platform: Annotated[str, typer.Argument(metavar="PLATFORM", help="e.g. euw1, na1, kr")],
               as_json: JsonOption = False) -> None:
    """Track a player: account-v1 resolves the Riot ID (a run of the add-tracked-player flow).

    Exit 2 for a bad Riot ID or platform, 1 when Riot knows no such account or fails."""
    try:
        with _prefect_console_quiet():
            player = call(lambda: families.track_player(riot_id, platform))
    except NotFoundError as exc:
        err.print(str(exc) if str(exc).startswith("riot_id") else f"riot_id: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except ProviderError as exc:
        err.print(f"Riot API: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    print_json(player) if as_json else _say(
        f"tracking {player['game_name']}#{player['tag_line']} on {player['platform']} "
        f"({'new' if player['created'] else 'already known'}), puuid {player['puuid']}")


@riot_app.command("players")
def riot_players(tracked: Annotated[bool, typer.Option("--tracked", help="only the tracked players")] = False,
                 limit: Limit = 50, as_json: JsonOption = False) -> None:
    """Players, tracked first, with matches stored, smurf score and signals, last ban check."""
    page = sync_call(lambda: families.list_players(tracked=True if tracked else None, limit=limit))
    if as_json:
        print_json(page)
        return
    table = Table("riot id", "platform", "tracked", "matches", "smurf", "ban check", box=None)
    for p in page["items"]:
        smurf = p["smurf"]
        verdict = "-" if smurf is None else (f"{smurf['score']:.2f} {'FLAGGED' if smurf['flagged'] else 'ok'}"
                                             + (f" ({', '.join(smurf['signals'])})" if smurf["signals"] else ""))
        ban = f"{p['ban_check']['verdict']} {when(p['ban_check']['checked_at'])}" if p["ban_check"] else "-"
        table.add_row(p["riot_id"] or p["puuid"][:16], p["platform"], "yes" if p["is_tracked"] else "",
                      str(p["matches_fetched"]), verdict, ban)
    out.print(table)
    _say(f"{len(page['items'])} of {page['total']} players")


# --- brands ----------------------------------------------------------------------------------------

def _topics(topics: list[str], queries: list[str]) -> dict[str, list[str]]:
    by_topic: dict[str, list[str]] = {t: [] for t in topics}
    for query in queries:
        topic, sep, question = query.partition(":")
        if not sep or not topic.strip() or not question.strip():
            raise ConfigError(f"--query: expected 'topic:question', got {query!r}")
        by_topic.setdefault(topic.strip(), []).append(question.strip())
    return by_topic


def _schedule_line(job: dict[str, Any], *, next_run: bool = True) -> str:
    state = (f", next run {when(job['next_run_time'])}" if next_run else "") if job["is_active"] else ", inactive"
    return f"{job['cron_expression']} ({job['timezone']}) {job['job_type']}{state}"


@brands_app.command("add")
def brands_add(name: Annotated[str, typer.Argument(metavar="NAME", help="the brand's name, e.g. 'Acme CRM'")],
               customer: Annotated[str, typer.Option(help="the customer's UUID")],
               topic: Annotated[list[str] | None, typer.Option("--topic", help="a topic (repeat the option)")] = None,
               query: Annotated[list[str] | None, typer.Option(
                   "--query", help="a query as 'topic:question', split at the first ':' (repeat it); "
                                   "its topic is added if no --topic names it")] = None,
               competitor: Annotated[list[str] | None, typer.Option("--competitor", help="a competitor "
                                                                    "(repeat it)")] = None,
               as_json: JsonOption = False) -> None:
    """Create a brand with its topics, their queries and its competitors.

    Example: jobpipes brands add "Acme CRM" --customer 9b1f3a52-0000-4000-8000-00000000de70
    --query "crm software:best CRM for a small business" --competitor Globex"""
    async def create() -> dict[str, Any]:
        return await brands.create_brand(customer_id=customer, name=name, competitors=competitor or [],
                                         topics=_topics(topic or [], query or []))

    brand = call(create)
    if as_json:
        print_json(brand)
        return
    _say(f"created {brand['name']} ({brand['id']}) for customer {brand['customer_id']}: "
         f"{_n(brand['topics_count'], 'topic')}, {_n(brand['queries_count'], 'query', 'queries')}, "
         f"competitors {', '.join(brand['competitors']) or '-'}")
    _say(f"schedule it: jobpipes brands schedule {brand['id']} --cron '0 6 * * *'")


@brands_app.command("list")
def brands_list(customer: Annotated[str | None, typer.Option(help="only this customer's brands")] = None,
                as_json: JsonOption = False) -> None:
    """Every brand: customer, topics and queries, competitors, scheduled jobs."""
    rows = call(lambda: brands.list_brands(customer))
    if as_json:
        print_json(rows)
        return
    table = Table("brand", "id", "customer", "topics", "queries", "competitors", "schedules", box=None)
    for b in rows:
        schedules = "\n".join(_schedule_line(j, next_run=False) for j in b["schedules"]) or "-"
        table.add_row(b["name"], b["id"], b["customer_id"], str(b["topics_count"]), str(b["queries_count"]),
                      ", ".join(b["competitors"]) or "-", schedules)
    out.print(table)
    _say(_n(len(rows), "brand"))


@brands_app.command("show")
def brands_show(brand_id: Annotated[str, typer.Argument(metavar="BRAND_ID")], as_json: JsonOption = False) -> None:
    """One brand: competitors, topics with their queries, scheduled jobs."""
    brand = call(lambda: brands.get_brand(brand_id))
    if as_json:
        print_json(brand)
        return
    out.print(f"[bold]{brand['name']}[/bold]  {brand['id']}", highlight=False)
    _say(f"  customer     {brand['customer_id']}\n  competitors  {', '.join(brand['competitors']) or '-'}")
    for t in brand["topics"]:
        _say(f"  topic {t['name']!r}: " + ("; ".join(q["query_text"] for q in t["queries"]) or "no query"))
    for job in brand["schedules"]:
        _say(f"  schedule brand-job-{job['id']}: {_schedule_line(job)}")
    if not brand["schedules"]:
        _say(f"  no schedule: jobpipes brands schedule {brand['id']} --cron '0 6 * * *'")


@brands_app.command("schedule")
def brands_schedule(brand_id: Annotated[str, typer.Argument(metavar="BRAND_ID")],
                    cron: Annotated[str, typer.Option(help="a 5-field cron expression, e.g. '0 6 * * *'")],
                    timezone: Annotated[str | None, typer.Option(help="an IANA zone (default UTC, or the "
                                                                 "schedule's own when it exists)")] = None,
                    job_type: Annotated[str, typer.Option(help=" | ".join(JOB_TYPES))] = "data_collection_and_scoring",
                    active: Annotated[bool, typer.Option("--active/--inactive", help="schedule on or off")] = True,
                    set_: Annotated[list[str] | None, typer.Option("--set", help="a metadata key=value: collectors "
                                                                   "'[\"chatgpt\"]', parallel, positionLimit, "
                                                                   "sentimentLimit... (replaces the job's metadata)")] = None,
                    as_json: JsonOption = False) -> None:
    """Create the brand's scheduled job of --job-type, or update it; its Prefect schedule on
    the brand-job deployment follows at once."""
    metadata = pairs(set_, "--set") or None

    async def apply() -> dict[str, Any]:
        return await brands.schedule_brand(brand_id, cron_expression=cron, timezone=timezone, job_type=job_type,
                                           is_active=active, metadata=metadata)

    job = call(apply)
    print_json(job) if as_json else _say(
        f"brand-job-{job['id']}: {_schedule_line(job)} ({'created' if job['created'] else 'updated'})")
