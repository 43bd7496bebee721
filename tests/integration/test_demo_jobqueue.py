"""The job-queue section of `make demo` runs end to end and prints what happened."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.db import session_scope
from core.db.scheduled_jobs import ScheduledJob
from core.jobqueue.models import Job, Registration
from deployments.dev import demo_jobqueue


def test_the_demo_enqueues_in_a_transaction_runs_a_worker_and_schedules_a_job(app_env, capsys):
    assert demo_jobqueue.run() is True
    out = capsys.readouterr().out
    assert "rolled back: 0 jobs exist for it" in out
    assert re.search(r"progress +BuildReportJob +Running +\d+% Monthly registrations: page [1-4] of 5", out)
    assert "scheduled job   PurgeExpiredRegistrationsJob: '0 3 * * *' Europe/Madrid" in out
    with session_scope(app_env["DATABASE_URL"]) as session:
        jobs = session.execute(select(Job)).scalars().all()
        assert sorted(j.job_type for j in jobs) == [f"core.jobqueue.examples.{name}" for name in (
            "BuildReportJob", "PurgeExpiredRegistrationsJob", "SendEmailJob")]  # full type names (seed 002)
        assert {(j.status, j.progress_percent, j.claimed_by) for j in jobs} == {("Completed", 100, "demo-worker")}
        assert [r.email for r in session.execute(select(Registration)).scalars()] == ["new.user@example.com"]
        [scheduled] = session.execute(select(ScheduledJob)).scalars().all()
        assert (scheduled.cron_expression, scheduled.last_run_time is not None) == ("0 3 * * *", True)
