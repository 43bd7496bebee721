"""The alarms of every job, recorded and e-mailed: ``POST /api/v1/alerts/check``.

Prefect's server calls the check through its watchdog automation
(``prefect_api.automations``, created by ``python -m deployments.deploy``) every
``alerts.checkEverySeconds`` when no check has run: a stopped scheduler or worker makes no
event of its own. A check reads the overview's live alarms,
opens a ``job_alerts`` row for each new one (job, kind), e-mails the job's new alarms once
through the run e-mails' path (SMTP or the outbox), and resolves the rows whose condition
has cleared. Two checks at once open one row: the open (job, kind) pair is unique.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.db import session_scope
from core.db.types import utcnow
from core.notify import alarm_email, deliver
from core.runs.models import JobAlert
from core.settings import get_settings
from deployments.control.overview import overview
from deployments.control.rows import iso
from prefect_api.automations import CHECK_RESOURCE, CHECKED_EVENT
from tasks._common import db_url

log = logging.getLogger(__name__)


def alert_view(row: JobAlert) -> dict[str, Any]:
    return {"id": row.id, "job_id": row.job_id, "kind": row.kind, "reason": row.reason, "since": iso(row.since),
            "opened_at": iso(row.opened_at), "last_seen_at": iso(row.last_seen_at),
            "resolved_at": iso(row.resolved_at), "notified_at": iso(row.notified_at)}


def list_alerts(*, open_only: bool = False, job_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(JobAlert)
    if open_only:
        query = query.where(JobAlert.resolved_at.is_(None))
    if job_id is not None:
        query = query.where(JobAlert.job_id == job_id)
    with session_scope(db_url()) as session:
        return [alert_view(r) for r in session.execute(query.order_by(JobAlert.opened_at.desc()).limit(limit)).scalars()]


def _record(live: dict[str, list[dict[str, str]]], now: datetime) -> tuple[int, int]:
    """Open rows for new alarms, touch the ones still true, resolve the cleared; (opened, resolved)."""
    opened = resolved = 0
    with session_scope(db_url()) as session:
        current = {(r.job_id, r.kind): r for r in session.execute(
            select(JobAlert).where(JobAlert.resolved_at.is_(None))).scalars()}
        for (job_id, kind), row in current.items():
            if kind in {a["kind"] for a in live.get(job_id, [])}:
                row.last_seen_at = now
            else:  # cleared, or the job is gone
                row.resolved_at = now
                resolved += 1
    for job_id, alarms in live.items():
        for alarm in alarms:
            if (job_id, alarm["kind"]) in current:
                continue
            try:
                with session_scope(db_url()) as session:
                    session.add(JobAlert(job_id=job_id, kind=alarm["kind"], reason=alarm["reason"][:4000],
                                         since=datetime.fromisoformat(alarm["since"]), opened_at=now,
                                         last_seen_at=now))
                opened += 1
            except IntegrityError:  # a check running beside this one opened it first
                continue
    return opened, resolved


def _notify_pending(titles: dict[str, str]) -> int:
    """E-mail every open alarm not e-mailed yet, one message per job; returns messages sent."""
    settings = get_settings()
    with session_scope(db_url()) as session:
        pending = list(session.execute(select(JobAlert).where(
            JobAlert.resolved_at.is_(None), JobAlert.notified_at.is_(None)).order_by(JobAlert.id)).scalars())
        session.expunge_all()
    if not pending or not settings.notify.enabled:
        return 0
    by_job: dict[str, list[JobAlert]] = {}
    for row in pending:
        by_job.setdefault(row.job_id, []).append(row)
    sent = 0
    for job_id, rows in by_job.items():
        msg = alarm_email(job_id, titles.get(job_id, job_id), [alert_view(r) for r in rows],
                          sender=settings.notify.email_from, to=settings.notify.email_to)
        try:
            deliver(msg, settings.smtp, settings.outbox_dir)
        except OSError as exc:  # SMTP down: the rows stay un-notified, the next check sends them
            log.warning("alarm e-mail for %s not sent (%s); the next check retries", job_id, type(exc).__name__)
            continue
        with session_scope(db_url()) as session:
            session.execute(update(JobAlert).where(JobAlert.id.in_([r.id for r in rows]))
                            .values(notified_at=utcnow()))
        sent += 1
    return sent


async def check(trigger: str = "manual") -> dict[str, Any]:
    """Evaluate every job's alarms now, record them and e-mail the new ones."""
    view = await overview()
    now = utcnow()
    live = {j["id"]: j["alarms"] for j in view["jobs"]}
    titles = {j["id"]: j["title"] for j in view["jobs"]}
    opened, resolved = await asyncio.to_thread(_record, live, now)
    emailed = await asyncio.to_thread(_notify_pending, titles)
    _emit_checked(trigger, sum(len(a) for a in live.values()))
    return {"checked_at": now.isoformat(), "trigger": trigger, "opened": opened, "resolved": resolved,
            "emailed": emailed, "open": list_alerts(open_only=True)}


def _emit_checked(trigger: str, alarms: int) -> None:
    """Tell Prefect a check ran: the watchdog automation waits ``checkEverySeconds`` after it."""
    from prefect.events import emit_event

    try:
        emit_event(CHECKED_EVENT, resource={"prefect.resource.id": CHECK_RESOURCE},
                   payload={"trigger": trigger, "alarms": alarms})
    except Exception as exc:  # Prefect unreachable: the check itself is done and recorded
        log.warning("could not emit %s: %s", CHECKED_EVENT, type(exc).__name__)
