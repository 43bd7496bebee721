"""The benchmark's no-op job for this project (the worker imports it via JOBS_MODULES)."""

from __future__ import annotations

from pydantic import BaseModel

from bench.peers.common import record
from core.jobqueue import JobProgress, job_handler


class NoopJob(BaseModel):
    token: str


@job_handler(NoopJob)
async def noop(job: NoopJob, progress: JobProgress) -> None:
    record(job.token)
