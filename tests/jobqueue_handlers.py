"""Job types used by the job-queue tests; workers in subprocesses import this module."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from pydantic import BaseModel

from core.jobqueue import JobProgress, job_handler

PEAK = {"current": 0, "peak": 0}


def markers() -> Path:
    path = Path(os.environ.get("JOBQUEUE_MARKERS", "/tmp/jobpipes-jobqueue-markers"))
    path.mkdir(parents=True, exist_ok=True)
    return path


class RecordJob(BaseModel):
    """Leaves a start and a done marker per execution; sleeps ``seconds`` in between."""

    token: str
    seconds: float = 0


class ProbeJob(BaseModel):
    """Tracks how many of its kind run at once (in-process workers only)."""

    seconds: float = 0.2


class ProgressJob(BaseModel):
    steps: int = 3


class ExplodingJob(BaseModel):
    reason: str = "boom"


@job_handler(RecordJob)
async def record(job: RecordJob, progress: JobProgress) -> None:
    (markers() / f"{job.token}.start.{uuid.uuid4().hex}").touch()
    await asyncio.sleep(job.seconds)
    (markers() / f"{job.token}.done.{uuid.uuid4().hex}").touch()


@job_handler(ProbeJob)
async def probe(job: ProbeJob, progress: JobProgress) -> None:
    PEAK["current"] += 1
    PEAK["peak"] = max(PEAK["peak"], PEAK["current"])
    try:
        await asyncio.sleep(job.seconds)
    finally:
        PEAK["current"] -= 1


@job_handler(ProgressJob)
async def stepwise(job: ProgressJob, progress: JobProgress) -> None:
    for step in range(job.steps + 1):
        await progress.report(f"step {step} of {job.steps}", round(100 * step / job.steps))


@job_handler(ExplodingJob)
async def explode(job: ExplodingJob, progress: JobProgress) -> None:
    await progress.report("about to fail", 10)
    raise RuntimeError(job.reason)


class BatchJob(BaseModel):
    """Declared batch mode: many run in one ``execute-job-batch`` task run; leaves start/done
    markers like RecordJob, and fails when ``fail`` is set."""

    token: str
    seconds: float = 0
    fail: str | None = None


@job_handler(BatchJob, mode="batch")
async def batched(job: BatchJob, progress: JobProgress) -> None:
    (markers() / f"{job.token}.start.{uuid.uuid4().hex}").touch()
    await progress.report(f"{job.token} running", 50)
    await asyncio.sleep(job.seconds)
    if job.fail:
        raise ValueError(job.fail)
    (markers() / f"{job.token}.done.{uuid.uuid4().hex}").touch()


class CancellableJob(BaseModel):
    """Works in ``steps`` steps of ``seconds``, checking its cancellation token between steps."""

    token: str
    steps: int = 100
    seconds: float = 0.1


@job_handler(CancellableJob)
async def cancellable(job: CancellableJob, progress: JobProgress) -> None:
    (markers() / f"{job.token}.start.{uuid.uuid4().hex}").touch()
    for step in range(job.steps):
        progress.cancellation.raise_if_requested()
        await progress.report(f"step {step} of {job.steps}", round(100 * step / job.steps))
        await asyncio.sleep(job.seconds)
    (markers() / f"{job.token}.done.{uuid.uuid4().hex}").touch()


class StubbornJob(BaseModel):
    """Sleeps ``seconds`` without ever looking at its cancellation token."""

    token: str
    seconds: float = 120


@job_handler(StubbornJob)
async def stubborn(job: StubbornJob, progress: JobProgress) -> None:
    await progress.report("sleeping", 0)
    try:
        await asyncio.sleep(job.seconds)
    except asyncio.CancelledError:
        (markers() / f"{job.token}.interrupted.{uuid.uuid4().hex}").touch()
        raise
    (markers() / f"{job.token}.done.{uuid.uuid4().hex}").touch()


class BatchCancellableJob(BaseModel):
    """Batch mode: like CancellableJob, many in one task run."""

    token: str
    steps: int = 30
    seconds: float = 0.1


@job_handler(BatchCancellableJob, mode="batch")
async def batch_cancellable(job: BatchCancellableJob, progress: JobProgress) -> None:
    for _ in range(job.steps):
        if progress.cancellation.requested:
            raise asyncio.CancelledError  # a handler may stop with CancelledError too
        await asyncio.sleep(job.seconds)
    (markers() / f"{job.token}.done.{uuid.uuid4().hex}").touch()
