"""The profile queue, the quota ledger and the tracked Riot players as operators see them.

One home for ``jobpipes profiles|quota|riot`` and any route that needs the same. The queue
and ledger reads and writes are plain database work on the core repositories (no flow run:
they are instant and need no Prefect API); the quota reset and tracking a player run their
flows (``quota_reset``, ``add_tracked_player``), so they are recorded like every run.
Bad input raises ConfigError whose message starts with the field's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from core.db import session_scope
from core.errors import ConfigError, InvalidUrnError
from core.profiles import entries, quota
from core.profiles.models import ApiQuota, EntryStatus, ProfileEntry
from core.riot.models import BanCheck, RiotPlayer, SmurfAnalysis
from core.riot.players import parse_platform, parse_riot_id
from core.settings import get_settings
from deployments.control.rows import iso
from flows.profiles import quota_reset
from flows.riot import add_tracked_player
from tasks._common import db_url

ENTRY_STATUSES = tuple(s.value for s in EntryStatus)


def _limit(limit: int, most: int = 1000) -> int:
    if not 1 <= limit <= most:
        raise ConfigError(f"limit: must be between 1 and {most} (got {limit})")
    return limit


# --- profile entries --------------------------------------------------------------------------


def add_entries(urns: list[str]) -> dict[str, int]:
    """Enqueue URNs as PENDING, all validated first (one bad URN adds none):
    ``{"added": new rows, "known": already queued, "given": distinct URNs}``."""
    distinct = list(dict.fromkeys(u.strip() for u in urns if u.strip()))
    if not distinct:
        raise ConfigError("urns: give at least one URN")
    try:
        with session_scope(db_url()) as session:
            added = entries.add_pending(session, distinct)
    except InvalidUrnError as exc:
        raise ConfigError(f"urns: {exc}") from None
    return {"added": added, "known": len(distinct) - added, "given": len(distinct)}


def requeue_failed(urns: list[str] | None = None) -> dict[str, int]:
    """FAILED entries (all, or only ``urns``) back to PENDING: ``{"requeued": n}``."""
    with session_scope(db_url()) as session:
        return {"requeued": entries.requeue_failed(session, urns or None)}


def _entry_status(status: str | None) -> str | None:
    if status is None:
        return None
    if status.upper() not in ENTRY_STATUSES:
        raise ConfigError(f"status: {status!r} is not one of {', '.join(ENTRY_STATUSES)}")
    return status.upper()


def entry_view(entry: ProfileEntry) -> dict[str, Any]:
    return {"urn": entry.urn, "status": entry.status, "error": entry.error_message, "fetch_count": entry.fetch_count,
            "last_fetched_at": iso(entry.last_fetched_at), "claimed_by": entry.claimed_by,
            "created_at": iso(entry.created_at), "updated_at": iso(entry.updated_at)}


def list_entries(*, status: str | None = None, limit: int = 20) -> dict[str, Any]:
    """Entries newest first, and the count of each status: ``{"items", "total", "counts"}``."""
    wanted, limit = _entry_status(status), _limit(limit)
    query = select(ProfileEntry).order_by(ProfileEntry.updated_at.desc(), ProfileEntry.id.desc()).limit(limit)
    if wanted:
        query = query.where(ProfileEntry.status == wanted)
    with session_scope(db_url()) as session:
        counts = entries.count_by_status(session)
        items = [entry_view(e) for e in session.execute(query).scalars()]
    total = counts.get(wanted, 0) if wanted else sum(counts.values())
    return {"items": items, "total": total, "counts": {s: counts.get(s, 0) for s in ENTRY_STATUSES}}


# --- the quota ledger ---------------------------------------------------------------------


def _period(period: str | None) -> str | None:
    if period is None:
        return None
    try:
        datetime.strptime(period, quota.PERIOD_FORMAT)
    except ValueError:
        raise ConfigError(f"period: {period!r} is not a period name like 2026-01-15T00:00Z") from None
    return period


def ledger_view(row: ApiQuota | quota.QuotaState) -> dict[str, Any]:
    state = row if isinstance(row, quota.QuotaState) else quota.QuotaState(
        row.provider, row.period, row.monthly_limit, row.calls_used, row.reserved)
    return {"provider": state.provider, "period": state.period, "limit": state.monthly_limit,
            "used": state.calls_used, "reserved": state.reserved, "remaining": state.remaining}


def quota_ledger(*, provider: str | None = None, period: str | None = None, limit: int = 24) -> dict[str, Any]:
    """The ledger rows, newest period first, and the period the fetcher writes to now:
    ``{"current_period", "items"}``."""
    wanted, limit = _period(period), _limit(limit)
    query = select(ApiQuota).order_by(ApiQuota.period.desc(), ApiQuota.provider).limit(limit)
    if provider:
        query = query.where(ApiQuota.provider == provider)
    if wanted:
        query = query.where(ApiQuota.period == wanted)
    with session_scope(db_url()) as session:
        current = quota.current_period(session, get_settings().cron)
        return {"current_period": current, "items": [ledger_view(r) for r in session.execute(query).scalars()]}


async def reset_quota(*, monthly_limit: int | None = None, reset_usage: bool = False) -> dict[str, Any]:
    """Run the ``quota_reset`` flow (a flow run, in this process): open or re-limit the current
    period; returns the period's ledger row and the run's status."""
    if monthly_limit is not None and monthly_limit < 0:
        raise ConfigError(f"monthly_limit: must be >= 0 (got {monthly_limit})")
    result = await quota_reset(monthly_limit=monthly_limit, reset_usage=reset_usage)
    provider, period = result.metrics.custom["provider"], result.metrics.custom["period"]
    with session_scope(db_url()) as session:
        state = quota.get_state(session, provider=provider, period=period)
    assert state is not None  # the flow has just written it
    return ledger_view(state) | {"status": result.status, "flow_run_id": result.flow_run_id}


# --- Riot players -----------------------------------------------------------------------------


async def track_player(riot_id: str, platform: str) -> dict[str, Any]:
    """Track a player by Riot ID (``gameName#tagLine``) through the ``add_tracked_player`` flow.

    ConfigError naming ``riot_id`` or ``platform`` before any call; the flow's
    ``UnknownRiotIdError`` (a NotFoundError) when Riot knows no such account, and other
    ProviderErrors when Riot fails."""
    try:
        parse_riot_id(riot_id)
        parse_platform(platform)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return await add_tracked_player(riot_id=riot_id, platform=platform)


def list_players(*, tracked: bool | None = None, limit: int = 50) -> dict[str, Any]:
    """Players (tracked first, then by name) with their smurf verdict and last ban check:
    ``{"items", "total"}``."""
    limit = _limit(limit)
    last_check = (select(BanCheck.puuid, func.max(BanCheck.id).label("id")).group_by(BanCheck.puuid).subquery())
    query = (select(RiotPlayer, SmurfAnalysis, BanCheck)
             .outerjoin(SmurfAnalysis, SmurfAnalysis.puuid == RiotPlayer.puuid)
             .outerjoin(last_check, last_check.c.puuid == RiotPlayer.puuid)
             .outerjoin(BanCheck, BanCheck.id == last_check.c.id)
             .order_by(RiotPlayer.is_tracked.desc(), RiotPlayer.game_name, RiotPlayer.puuid).limit(limit))
    count = select(func.count()).select_from(RiotPlayer)
    if tracked is not None:
        query, count = query.where(RiotPlayer.is_tracked.is_(tracked)), count.where(RiotPlayer.is_tracked.is_(tracked))
    with session_scope(db_url()) as session:
        rows = session.execute(query).all()
        return {"items": [_player_view(p, a, b) for p, a, b in rows], "total": session.execute(count).scalar_one()}


def _player_view(player: RiotPlayer, analysis: SmurfAnalysis | None, check: BanCheck | None) -> dict[str, Any]:
    riot_id = f"{player.game_name}#{player.tag_line}" if player.game_name and player.tag_line else None
    smurf = None if analysis is None else {
        "score": analysis.score, "flagged": analysis.is_flagged, "games": analysis.games,
        "signals": sorted(k for k, v in (analysis.signals or {}).items() if isinstance(v, dict) and v.get("fired")),
        "analyzed_at": iso(analysis.analyzed_at)}
    ban = None if check is None else {"verdict": check.verdict, "checked_at": iso(check.checked_at)}
    return {"puuid": player.puuid, "riot_id": riot_id, "platform": player.platform, "is_tracked": player.is_tracked,
            "matches_fetched": player.matches_fetched, "last_match_fetch_at": iso(player.last_match_fetch_at),
            "smurf": smurf, "ban_check": ban}
