"""Application job queue (seed 002), the Prefect-free part: job types, cron, repository.

Define a job as a pydantic model and register its handler::

    class SendEmailJob(BaseModel):
        recipient_email: str

    @job_handler(SendEmailJob)
    async def handle(job: SendEmailJob, progress: JobProgress) -> None:
        await progress.report("sending", 0)
        progress.cancellation.raise_if_requested()  # seed 002's cancellation token

Start it inside your own transaction with ``core.jobqueue.start_job(session, job)``.
"""

from core.jobqueue.cancellation import Cancellation, JobCancelled
from core.jobqueue.registry import JobProgress, job_handler, type_name
from core.jobqueue.repo import start_job

__all__ = ["Cancellation", "JobCancelled", "JobProgress", "job_handler", "start_job", "type_name"]
