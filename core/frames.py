"""pandas DataFrames of the product's tables, for notebooks.

Every function reads the flows' database (``core.settings.get_settings().database_url``, or
``url=``) and returns typed columns: datetimes tz-aware UTC (``datetime64[ns, UTC]``),
statuses ``category`` over their whole vocabulary, integers ``Int64``, decimals ``float64``,
flags ``boolean``, text and ids ``str``. An empty result has the same columns and dtypes. Filters are
keyword arguments; a bad one (an unknown status, a datetime that does not parse) raises
ValueError naming the argument and what it accepts. ``since`` (inclusive) and ``until``
(exclusive) take a datetime, a date or an ISO string, naive ones UTC; statuses match
case-insensitively.

    run_history(job="price_collection", status="SUCCESS", since="2026-01-01", limit=50)
    profile_entries(status="FAILED")
    quota_ledger(provider="rapidapi", period="2026-01-15T00:00Z")
    riot_players(flagged=True)          # smurf verdict and one value + fired column per signal
    ban_checks(verdict="LIKELY_BANNED", since="2026-01-01")
    brand_scores("Acme CRM")            # the brand and its competitors, per scoring run
    coin_prices(symbol=["btc", "eth"], since="2026-01-01")
    queue_jobs(status="Failed", job_type="SendEmailJob", since="2026-01-01")
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Select, TypeDecorator, func, or_, select

from core.brands.models import Brand, BrandScoreAggregate
from core.crypto.models import Asset, AssetPrice
from core.db import get_engine
from core.jobqueue.models import Job, JobStatus
from core.profiles.models import ApiQuota, EntryStatus, ProfileEntry
from core.riot.analysis import Weights
from core.riot.bans import ACTIVE, LIKELY_BANNED, UNKNOWN
from core.riot.models import BanCheck, RiotPlayer, SmurfAnalysis
from core.runs.models import JobExecutionHistory, RunStatus
from core.settings import get_settings

__all__ = ["BAN_VERDICTS", "SIGNALS", "ban_checks", "brand_scores", "coin_prices", "profile_entries", "queue_jobs",
           "quota_ledger", "riot_players", "run_history"]

BAN_VERDICTS = (ACTIVE, LIKELY_BANNED, UNKNOWN)
SIGNALS = tuple(Weights.model_fields)  # the smurf signals, in the analyzer's order

Dtype = str | tuple[str, ...]  # a pandas dtype, "datetime", or a status vocabulary (categories)
_BY_PYTHON_TYPE: dict[type, str] = {int: "Int64", float: "float64", bool: "boolean", datetime: "datetime",
                                    dict: "object", list: "object"}


def run_history(*, job: str | None = None, status: str | None = None, since: Any = None, until: Any = None,
                limit: int | None = None, url: str | None = None) -> pd.DataFrame:
    """``job_execution_history``, newest run first; ``since``/``until`` bound ``started_at``."""
    h = JobExecutionHistory
    stmt = select(h.id, h.job_name, h.job_type, h.status, h.started_at, h.finished_at, h.duration_ms,
                  h.total_processed, h.successful_count, h.failed_count, h.items_created, h.items_updated,
                  h.items_skipped, h.api_calls_made, h.quota_remaining, h.error_summary, h.flow_run_id, h.metrics)
    stmt = _between(stmt, h.started_at, since, until).order_by(h.started_at.desc(), h.id.desc())
    if job is not None:
        stmt = stmt.where(h.job_name == job)
    if status is not None:
        stmt = stmt.where(h.status == _one_of("status", status, list(RunStatus)))
    return _read(stmt.limit(_limit(limit)), url, status=tuple(RunStatus))


def profile_entries(*, status: str | None = None, url: str | None = None) -> pd.DataFrame:
    """``profile_entries`` (the LinkedIn URN queue), oldest first."""
    e = ProfileEntry
    stmt = select(e.id, e.urn, e.status, e.error_message, e.fetch_count, e.last_fetched_at, e.requested_at,
                  e.claimed_by, e.created_at, e.updated_at).order_by(e.created_at, e.id)
    if status is not None:
        stmt = stmt.where(e.status == _one_of("status", status, list(EntryStatus)))
    return _read(stmt, url, status=tuple(EntryStatus))


def quota_ledger(*, provider: str | None = None, period: str | None = None, url: str | None = None
                 ) -> pd.DataFrame:
    """``api_quota_ledger``: one row per provider and period (latest period first), with ``remaining``."""
    q = ApiQuota
    stmt = select(q.provider, q.period, q.monthly_limit, q.calls_used, q.reserved, q.created_at,
                  q.updated_at).order_by(q.provider, q.period.desc())
    if provider is not None:
        stmt = stmt.where(q.provider == provider)
    if period is not None:
        stmt = stmt.where(q.period == period)
    frame = _read(stmt, url)
    frame.insert(5, "remaining", (frame["monthly_limit"] - frame["calls_used"] - frame["reserved"]).clip(lower=0))
    return frame


def riot_players(*, flagged: bool | None = None, tracked: bool | None = None, url: str | None = None
                 ) -> pd.DataFrame:
    """``riot_players`` with their latest smurf analysis, highest score first.

    ``is_flagged`` is the verdict (NA: not analysed yet); each signal of the analyzer gives
    two columns, its value (``win_rate``) and whether it fired (``win_rate_fired``); ``tier``
    is the current rank the rank signals read. ``flagged=False``: analysed and not flagged.
    """
    p, a = RiotPlayer, SmurfAnalysis
    stmt = (select(p.puuid, p.game_name, p.tag_line, p.platform, p.is_tracked, p.matches_fetched, p.is_exhausted,
                   p.last_match_fetch_at, p.discovered_at, a.games, a.excluded_games, a.score, a.is_flagged,
                   a.analyzed_at, a.signals)
            .outerjoin(a, a.puuid == p.puuid).order_by(a.score.desc().nulls_last(), p.puuid))
    if flagged is not None:
        stmt = stmt.where(a.is_flagged.is_(_flag("flagged", flagged)))
    if tracked is not None:
        stmt = stmt.where(p.is_tracked.is_(_flag("tracked", tracked)))
    dtypes = _dtypes(stmt)
    del dtypes["signals"]
    dtypes |= {"tier": "str"} | {f"{name}{end}": kind for name in SIGNALS
                                 for end, kind in (("", "float64"), ("_fired", "boolean"))}
    return _frame((_flatten_signals(row) for row in _rows(stmt, url)), dtypes)


def ban_checks(*, verdict: str | None = None, since: Any = None, until: Any = None, url: str | None = None
               ) -> pd.DataFrame:
    """``ban_checks``, newest first, with the player's name and the verdict's reason."""
    b, p = BanCheck, RiotPlayer
    stmt = (select(b.id, b.puuid, p.game_name, p.tag_line, b.verdict, b.checked_at, b.evidence)
            .outerjoin(p, p.puuid == b.puuid).order_by(b.checked_at.desc(), b.id.desc()))
    stmt = _between(stmt, b.checked_at, since, until)
    if verdict is not None:
        stmt = stmt.where(b.verdict == _one_of("verdict", verdict, BAN_VERDICTS))
    dtypes = _dtypes(stmt) | {"reason": "str", "platform": "str"}
    rows = ({**row, "reason": row["evidence"].get("reason"), "platform": row["evidence"].get("platform")}
            for row in _rows(stmt, url))
    return _frame(rows, dtypes, verdict=BAN_VERDICTS)


def brand_scores(brand: str | uuid.UUID | None = None, *, since: Any = None, until: Any = None,
                 url: str | None = None) -> pd.DataFrame:
    """``brand_scores`` over runs: per scoring run, one row for the brand (``is_own_brand``) and
    one per competitor. ``brand``: the brand's id or name (None: every brand)."""
    s, b = BrandScoreAggregate, Brand
    stmt = (select(s.computed_at, b.name.label("brand"), s.brand_name, s.is_own_brand, s.visibility,
                   s.share_of_voice, s.first_mention_rate, s.average_position, s.average_sentiment, s.answers,
                   s.mentioned_answers, s.mentions, s.job_run_id, s.brand_id)
            .join(b, b.id == s.brand_id)
            .order_by(s.computed_at, s.job_run_id, s.is_own_brand.desc(), s.visibility.desc(), s.brand_name))
    stmt = _between(stmt, s.computed_at, since, until)
    if brand is not None:
        try:
            stmt = stmt.where(s.brand_id == uuid.UUID(str(brand)))
        except ValueError:
            stmt = stmt.where(b.name == str(brand))
    return _read(stmt, url)


def coin_prices(*, symbol: str | Sequence[str] | None = None, since: Any = None, until: Any = None,
                url: str | None = None) -> pd.DataFrame:
    """``asset_prices`` with each asset's symbol and name, oldest first; ``symbol``: one or
    several (``"btc"``, case-insensitive)."""
    pr, a = AssetPrice, Asset
    stmt = (select(pr.timestamp, a.symbol, a.name, a.coingecko_id, pr.price_usd, pr.source, a.market_cap_rank,
                   pr.source_updated_at)
            .join(a, a.id == pr.asset_id).order_by(pr.timestamp, a.market_cap_rank.nulls_last(), a.symbol))
    stmt = _between(stmt, pr.timestamp, since, until)
    if symbol is not None:
        symbols = [symbol] if isinstance(symbol, str) else list(symbol)
        stmt = stmt.where(func.lower(a.symbol).in_([str(s).lower() for s in symbols]))
    return _read(stmt, url)


def queue_jobs(*, status: str | None = None, job_type: str | None = None, since: Any = None,
               until: Any = None, limit: int | None = None, url: str | None = None) -> pd.DataFrame:
    """``jobs`` (the application job queue), newest first; ``job_type``: the full type name or
    the class name alone (``SendEmailJob``); ``short_type`` is the class name, ``duration_s``
    from start to completion."""
    j = Job
    stmt = (select(j.id, j.job_type, j.status, j.created_at, j.started_at, j.completed_at, j.attempts,
                   j.progress_percent, j.progress_message, j.error_message, j.claimed_by, j.scheduled_job_id,
                   j.job_data)
            .order_by(j.created_at.desc(), j.id))
    stmt = _between(stmt, j.created_at, since, until)
    if status is not None:
        stmt = stmt.where(j.status == _one_of("status", status, list(JobStatus)))
    if job_type is not None:
        stmt = stmt.where(or_(j.job_type == job_type, j.job_type.endswith(f".{job_type}", autoescape=True)))
    frame = _read(stmt.limit(_limit(limit)), url, status=tuple(JobStatus))
    frame.insert(2, "short_type", frame["job_type"].str.rsplit(".", n=1).str[-1].astype("str"))
    frame.insert(7, "duration_s", (frame["completed_at"] - frame["started_at"]).dt.total_seconds())
    return frame


# --- rows -> typed frame ---------------------------------------------------------------------

def _read(stmt: Select[Any], url: str | None, **categories: tuple[str, ...]) -> pd.DataFrame:
    """Run ``stmt``; one column per selected column, typed from its SQL type."""
    return _frame(_rows(stmt, url), _dtypes(stmt), **categories)


def _rows(stmt: Select[Any], url: str | None) -> list[dict[str, Any]]:
    with get_engine(url or get_settings().database_url).connect() as conn:
        return [dict(row) for row in conn.execute(stmt).mappings()]


def _dtypes(stmt: Select[Any]) -> dict[str, Dtype]:
    """Column name -> dtype, from each selected column's SQL type (integers and flags nullable:
    an outer join or a missing value must not change the dtype)."""
    dtypes: dict[str, Dtype] = {}
    for column in stmt.selected_columns:
        sql_type = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
        try:
            python_type = sql_type.python_type
        except NotImplementedError:
            python_type = object
        dtypes[str(column.key)] = _BY_PYTHON_TYPE.get(python_type, "str")
    return dtypes


def _frame(rows: Iterable[Mapping[str, Any]], dtypes: Mapping[str, Dtype], **categories: tuple[str, ...]
           ) -> pd.DataFrame:
    """A DataFrame of exactly the columns of ``dtypes``, each cast to its dtype, also when
    empty; ``categories`` make those columns categorical over the given vocabulary."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(dtypes))
    for name, dtype in {**dtypes, **categories}.items():
        if isinstance(dtype, tuple):
            frame[name] = frame[name].astype(pd.CategoricalDtype(list(dtype)))
        elif dtype == "datetime":  # naive values (SQLite) are UTC
            frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("ns")
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def _flatten_signals(row: dict[str, Any]) -> dict[str, Any]:
    signals = row.pop("signals") or {}
    row["tier"] = (signals.get("level_vs_tier") or {}).get("tier")
    for name in SIGNALS:
        signal = signals.get(name) or {}
        row[name], row[f"{name}_fired"] = signal.get("value"), signal.get("fired")
    return row


# --- filters -----------------------------------------------------------------------------------

def _one_of(argument: str, value: object, allowed: Iterable[str]) -> str:
    """The vocabulary's spelling of ``value`` (matched case-insensitively), or ValueError."""
    allowed = [str(a) for a in allowed]
    for choice in allowed:
        if isinstance(value, str) and value.casefold() == choice.casefold():
            return choice
    raise ValueError(f"{argument}: {value!r} is not one of {', '.join(allowed)}")


def _when(argument: str, value: Any) -> datetime:
    """A filter's datetime, aware UTC; naive ones (and dates) are UTC."""
    if isinstance(value, str | datetime | date | pd.Timestamp):
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            stamp = pd.NaT
        if stamp is not pd.NaT:
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            return stamp.to_pydatetime()
    raise ValueError(f"{argument}: {value!r} is not a datetime; give a datetime, a date or an ISO 8601 "
                     f"string (2026-01-15, 2026-01-15T09:30Z)")


def _between(stmt: Select[Any], column: Any, since: Any, until: Any) -> Select[Any]:
    if since is not None:
        stmt = stmt.where(column >= _when("since", since))
    if until is not None:
        stmt = stmt.where(column < _when("until", until))
    return stmt


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: {limit!r} is not a positive integer (or None: no limit)")
    return limit


def _flag(argument: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{argument}: {value!r} is not one of True, False, None")
    return value
