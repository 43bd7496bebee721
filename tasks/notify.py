"""Send the completion e-mail of a run (SMTP, or an .eml file in the outbox)."""

from __future__ import annotations

import asyncio

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.notify import completion_email, deliver
from core.runs.history import RunRecord
from core.settings import get_settings


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
async def notify_completion(record: RunRecord) -> str | None:
    """E-mail the run summary (counts and errors); returns where it went, None if disabled."""
    settings = get_settings()
    if not settings.notify.enabled:
        return None
    msg = completion_email(record, sender=settings.notify.email_from, to=settings.notify.email_to)
    where = await asyncio.to_thread(deliver, msg, settings.smtp, settings.outbox_dir)
    get_run_logger().info("completion e-mail for %s sent to %s", record.job_name, where)
    return where
