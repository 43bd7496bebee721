"""The job-queue part of `make demo` (seed 002): jobs started inside the application's own
transaction, a jobs worker running them as Prefect task runs with progress, and a
cron-scheduled job kept in ``scheduled_jobs`` and on a Prefect schedule."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import timedelta

WORKER_NAME = "demo-worker"


class _BusinessError(Exception):
    """Stands for whatever makes the application roll its transaction back."""


def run() -> bool:
    """Enqueue, schedule, run a worker in-process until the jobs are done; print each step."""
    from sqlalchemy import func, select

    from core.db import session_scope
    from core.db.migrate import ensure_schema
    from core.db.types import utcnow
    from core.jobqueue import start_job
    from core.jobqueue.examples import BuildReportJob, PurgeExpiredRegistrationsJob, SendEmailJob
    from core.jobqueue.models import Job, Registration
    from core.settings import get_settings
    from deployments.control.scheduled_jobs import add_or_update_scheduled_job
    from flows.jobqueue import SCHEDULE_DEPLOYMENT, enqueue_scheduled_job

    get_settings.cache_clear()
    settings = get_settings()
    url = settings.database_url
    ensure_schema(url)
    print("\n== application job queue (seed 002) ==")
    try:
        with contextlib.suppress(_BusinessError), session_scope(url) as session:
            session.add(Registration(email="rolled.back@example.com", created_at=utcnow()))
            start_job(session, SendEmailJob(recipient_email="rolled.back@example.com", subject="Welcome!",
                                            body="You will never get this."))
            raise _BusinessError("payment declined")
        with session_scope(url) as session:
            session.add(Registration(email="new.user@example.com", created_at=utcnow()))
            ids = [start_job(session, SendEmailJob(recipient_email="new.user@example.com", subject="Welcome!",
                                                   body="Thank you for registering!")),
                   start_job(session, BuildReportJob(pages=5))]
            lost = session.execute(select(func.count()).select_from(Job).where(
                Job.job_data["recipient_email"].as_string() == "rolled.back@example.com")).scalar_one()
        print(f"transaction     rolled back: {lost} jobs exist for it; committed: registration + "
              f"{len(ids)} jobs (SendEmailJob, BuildReportJob), Pending")

        info = add_or_update_scheduled_job(PurgeExpiredRegistrationsJob(max_expire_time=timedelta(days=30)),
                                           "0 3 * * *", timezone="Europe/Madrid")
        print(f"scheduled job   {info.name}: '{info.cron_expression}' {info.timezone}, next run "
              f"{info.next_run_time:%Y-%m-%d %H:%M} UTC, schedule on {SCHEDULE_DEPLOYMENT}")
        fired = enqueue_scheduled_job(name=info.name)  # what the schedule fires, fired now
        ids.append(uuid.UUID(str(fired)))
        print(f"                fired once now: job {fired}")

        asyncio.run(_run_worker(url, ids))
        with session_scope(url) as session:
            rows = session.execute(select(Job).where(Job.id.in_(ids)).order_by(Job.created_at)).scalars().all()
            for job in rows:
                took = (job.completed_at - job.started_at).total_seconds() if job.completed_at and job.started_at else 0
                print(f"{job.job_type.rsplit('.', 1)[-1]:<30} {job.status:<9} attempt {job.attempts}, {took:.2f} s, "
                      f"by {job.claimed_by}: {job.progress_message or job.error_message or ''}")
            ok = all(job.status == "Completed" for job in rows)
        print(f"Prefect         each job is an execute-job task run in a jobs-worker-session flow run "
              f"named {WORKER_NAME}; e-mails in {settings.outbox_dir if not settings.smtp.host else 'SMTP'}")
        return ok
    except Exception as exc:  # the rows say what happened; show it
        print(f"job queue demo failed: {type(exc).__name__}: {exc}")
        return False


async def _run_worker(url: str, ids: list[uuid.UUID], timeout: float = 120) -> None:
    """Run a jobs worker in this process until ``ids`` are finished, printing progress."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.jobqueue.models import Job
    from deployments.worker.jobs_worker import JobsWorker

    worker = JobsWorker(name=WORKER_NAME)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    seen: dict[uuid.UUID, tuple[object, ...]] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not task.done():
            with session_scope(url) as session:
                rows = session.execute(select(Job.id, Job.job_type, Job.status, Job.progress_percent,
                                              Job.progress_message).where(Job.id.in_(ids))).all()
            for row in rows:
                state = (row.status, row.progress_percent, row.progress_message)
                if seen.get(row.id) != state:
                    seen[row.id] = state
                    percent = "" if row.progress_percent is None else f"{row.progress_percent:>3}% "
                    print(f"  progress      {row.job_type.rsplit('.', 1)[-1]:<30} {row.status:<9} {percent}{row.progress_message or ''}")
            if rows and all(r.status in ("Completed", "Failed") for r in rows):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
