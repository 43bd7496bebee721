"""The seed's example jobs: SendEmailJob (SMTP) and PurgeExpiredRegistrationsJob, plus
BuildReportJob, a job that reports its progress page by page (used by ``make demo``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage

from pydantic import BaseModel, EmailStr, Field
from sqlalchemy import delete

from core.db import session_scope
from core.db.types import utcnow
from core.db.upsert import rowcount
from core.jobqueue.models import Registration
from core.jobqueue.registry import JobProgress, job_handler
from core.notify import deliver
from core.settings import get_settings


class SendEmailJob(BaseModel):
    recipient_email: EmailStr
    subject: str = Field(min_length=1, max_length=500)
    body: str


class PurgeExpiredRegistrationsJob(BaseModel):
    max_expire_time: timedelta = Field(timedelta(days=30), description="older than this is deleted")


class BuildReportJob(BaseModel):
    title: str = Field("Monthly registrations", min_length=1, max_length=200)
    pages: int = Field(5, ge=1, le=1000)
    seconds_per_page: float = Field(0.3, ge=0, le=60)


@job_handler(BuildReportJob)
async def build_report(job: BuildReportJob, progress: JobProgress) -> None:
    """Render ``pages`` pages (a sleep each), reporting progress after every page; stops
    between pages when the job's cancellation is requested."""
    await progress.report(f"{job.title}: starting", 0)
    for page in range(1, job.pages + 1):
        progress.cancellation.raise_if_requested()
        await asyncio.sleep(job.seconds_per_page)
        await progress.report(f"{job.title}: page {page} of {job.pages}", round(100 * page / job.pages))


@job_handler(SendEmailJob)
async def send_email(job: SendEmailJob, progress: JobProgress) -> None:
    """Send one e-mail over SMTP (or into the outbox folder when no SMTP host is set)."""
    await progress.report("Starting email send", 0)
    settings = get_settings()
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = job.subject, settings.notify.email_from, job.recipient_email
    msg.set_content(job.body)
    where = deliver(msg, settings.smtp, settings.outbox_dir)
    await progress.report(f"Email sent successfully via {where.split('://')[0]}", 100)


@job_handler(PurgeExpiredRegistrationsJob)
async def purge_expired_registrations(job: PurgeExpiredRegistrationsJob, progress: JobProgress) -> None:
    """Delete registrations created more than ``max_expire_time`` ago."""
    await progress.report("Purging expired registrations", 0)
    cutoff = utcnow() - job.max_expire_time
    with session_scope(get_settings().database_url) as session:
        deleted = rowcount(session.execute(delete(Registration).where(Registration.created_at < cutoff)))
    await progress.report(f"Purged {deleted} registrations older than {cutoff.isoformat()}", 100)
