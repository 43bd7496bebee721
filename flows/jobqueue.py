"""Application job queue on Prefect (seed 002): the schedule flow.

Application code enqueues with ``core.jobqueue.start_job(session, job)`` inside its own
transaction; a jobs worker (``python -m deployments.worker.jobs_worker``, its engine in
``flows.jobqueue_worker``) claims committed jobs and runs each as an ``execute-job`` task run
inside a ``jobs-worker-session`` flow run (a flow run per job would cost ~200 ms of
orchestration each; a task run costs a few ms). Scheduled
jobs are schedules of the ``enqueue-scheduled-job`` deployment, mirrored in ``scheduled_jobs``
(``deployments.control.scheduled_jobs``).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.utilities.asyncutils import run_coro_as_sync

from flows.spec import JobSpec
from tasks.jobqueue import enqueue_scheduled

SCHEDULE_FLOW = "enqueue-scheduled-job"
SCHEDULE_DEPLOYMENT = f"{SCHEDULE_FLOW}/{SCHEDULE_FLOW}"


@flow(name=SCHEDULE_FLOW)
def enqueue_scheduled_job(name: str) -> str | None:
    """Fired by a Prefect schedule: enqueue the scheduled job's next run (riding out a database
    outage). Synchronous, as the demo and notebooks call it."""
    job_id = run_coro_as_sync(enqueue_scheduled(name))
    if job_id is None:
        get_run_logger().warning("scheduled job %r is missing or disabled; nothing enqueued", name)
    return job_id


JOBS = (
    JobSpec(enqueue_scheduled_job, "jobqueue", "Enqueue a scheduled job",
            "Fired by the schedules that add_or_update_scheduled_job creates (seed 002); enqueues one job.",
            tags=("jobpipes", "jobs"), shared=True),
)
