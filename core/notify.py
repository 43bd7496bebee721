"""Run e-mails: when to send one (the notify policy), the message, and its delivery over
SMTP or into an outbox folder.

Policies: ``always`` (every run), ``problems`` (PARTIAL, FAILED, CRASHED or QUOTA_EXCEEDED:
the runs someone should look at; the default), ``failure`` (FAILED or CRASHED), ``never``.
RATE_LIMITED is not a problem: it is the seeds' graceful stop, and the next run
continues. A job's policy is ``notify.jobs[<job name>]`` if set, else what the job itself
declares (the profile fetcher ``always``, as seed 000 asks; brand jobs from
``brandJobs.notifyOnFailure``), else ``notify.policy``.
"""

from __future__ import annotations

import smtplib
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from core.config import NotifyPolicy, NotifySettings, SmtpSettings
from core.runs.history import RunRecord
from core.runs.models import RunStatus

_MAX_ERRORS_LISTED = 50

FAILURE_STATUSES = frozenset({RunStatus.FAILED.value, RunStatus.CRASHED.value})
PROBLEM_STATUSES = FAILURE_STATUSES | {RunStatus.PARTIAL.value, RunStatus.QUOTA_EXCEEDED.value}


def _message(subject: str, sender: str, to: str, date: datetime | None = None) -> EmailMessage:
    """An e-mail with this product's headers; the caller sets its content."""
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, sender, to
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="jobpipes.local")
    return msg


def job_policy(job_name: str, declared: NotifyPolicy | None, settings: NotifySettings) -> NotifyPolicy:
    """The policy of one job: configured per job, else the job's own, else the default."""
    return settings.jobs.get(job_name) or declared or settings.policy


def should_notify(policy: NotifyPolicy, status: str) -> bool:
    """Whether a run that ended with ``status`` is e-mailed under ``policy``."""
    if policy == "always":
        return True
    if policy == "problems":
        return status in PROBLEM_STATUSES
    if policy == "failure":
        return status in FAILURE_STATUSES
    return False


def completion_email(record: RunRecord, *, sender: str, to: str) -> EmailMessage:
    """The run summary e-mail: status, counts, quota and the errors (never secrets)."""
    msg = _message(f"[jobpipes] {record.job_name} {record.status}: "
                   f"{record.successful_count} ok, {record.failed_count} failed", sender, to, record.finished_at)
    errors = record.metrics.get("errors", [])
    lines = [
        f"Job:               {record.job_name} ({record.job_type})",
        f"Status:            {record.status}",
        f"Flow run:          {record.flow_run_id or '-'}",
        f"Started:           {record.started_at.isoformat()}",
        f"Finished:          {record.finished_at.isoformat()} ({record.duration_ms} ms)",
        f"Total processed:   {record.total_processed}",
        f"Successful:        {record.successful_count}",
        f"Failed:            {record.failed_count}",
        f"API calls made:    {record.api_calls_made}",
        f"Quota remaining:   {'-' if record.quota_remaining is None else record.quota_remaining}",
    ]
    if record.error_summary:
        lines += ["", "Run error:", f"  {record.error_summary.splitlines()[0]}"]
    if errors:
        lines += ["", f"Errors ({len(errors)}):"]
        lines += [f"  - {e['item']}: {e['error']}" for e in errors[:_MAX_ERRORS_LISTED]]
        if len(errors) > _MAX_ERRORS_LISTED:
            lines.append(f"  ... and {len(errors) - _MAX_ERRORS_LISTED} more (see job_execution_history)")
    msg.set_content("\n".join(lines) + "\n")
    return msg


QUEUE_JOB_NAME = "jobs_worker"  # the notify.jobs key of the application job queue's failures


def failed_jobs_email(worker: str, failures: list[dict[str, object]], *, sender: str, to: str) -> EmailMessage:
    """One e-mail for the queue jobs that failed (seed 002): id, type, attempt and error of each."""
    types = sorted({str(f["job_type"]).rsplit(".", 1)[-1] for f in failures})  # class names; the body has them in full
    msg = _message(f"[jobpipes] {QUEUE_JOB_NAME} FAILED: {len(failures)} job(s) of {', '.join(types)}", sender, to)
    lines = [f"Worker:  {worker}", f"Failed:  {len(failures)}", ""]
    lines += [f"  - job {f['job_id']} ({f['job_type']}, attempt {f['attempt']}): {f['error']}"
              for f in failures[:_MAX_ERRORS_LISTED]]
    if len(failures) > _MAX_ERRORS_LISTED:
        lines.append(f"  ... and {len(failures) - _MAX_ERRORS_LISTED} more (see the jobs table)")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def alarm_email(job_id: str, title: str, alarms: list[dict[str, str]], *, sender: str, to: str,
                page_url: str | None = None) -> EmailMessage:
    """The alarm e-mail of one job: each newly opened alarm with its reason (``core.runs.alarms``)."""
    kinds = ", ".join(a["kind"] for a in alarms)
    msg = _message(f"[jobpipes] ALARM {job_id}: {kinds}", sender, to)
    lines = [f"Job:   {title} ({job_id})", ""]
    for alarm in alarms:
        lines += [f"{alarm['kind']} (since {alarm['since']}):", f"  {alarm['reason']}", ""]
    lines.append("The alarm stays open until a check sees its condition cleared; it is not e-mailed again.")
    if page_url:
        lines.append(f"Operator page: {page_url}")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def deliver(msg: EmailMessage, smtp: SmtpSettings, outbox: Path) -> str:
    """Send over SMTP when ``smtp.host`` is set, else write an .eml file in ``outbox``;
    returns where it went."""
    if not smtp.host:
        outbox.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = outbox / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(msg.as_bytes())
        return str(path)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as client:
        if smtp.start_tls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password.get_secret_value())
        client.send_message(msg)
    return f"smtp://{smtp.host}:{smtp.port}"


def read_outbox(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
