"""Send the completion e-mail of a run (SMTP, or an .eml file in the outbox).

Not a Prefect task: the e-mail is the alert, so it must go out when Prefect's API is what
failed; an SMTP server that refuses is retried (2 s, then 10 s)."""

from __future__ import annotations

import asyncio

from tenacity import retry, stop_after_attempt, wait_chain, wait_fixed

from core.notify import completion_email, deliver
from core.runs.history import RunRecord
from core.settings import get_settings
from tasks._common import run_logger


@retry(stop=stop_after_attempt(3), wait=wait_chain(wait_fixed(2), wait_fixed(10)), reraise=True)
async def notify_completion(record: RunRecord) -> str | None:
    """E-mail the run summary (counts and errors); returns where it went, None if disabled."""
    settings = get_settings()
    if not settings.notify.enabled:
        return None
    msg = completion_email(record, sender=settings.notify.email_from, to=settings.notify.email_to)
    where = await asyncio.to_thread(deliver, msg, settings.smtp, settings.outbox_dir)
    run_logger().info("completion e-mail for %s sent to %s", record.job_name, where)
    return where
