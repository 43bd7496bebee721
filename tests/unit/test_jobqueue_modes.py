"""Per-type mode of the job queue (issue 13): declared with the handler, overridden in settings."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from core.jobqueue.registry import get_job_type, job_handler
from core.jobqueue.settings import JobsWorkerSettings


class ModeProbeJob(BaseModel):
    x: int = 0


def test_the_mode_is_declared_with_the_handler_and_defaults_to_one_task_run_per_job():
    class PlainProbeJob(BaseModel):
        x: int = 0

    @job_handler(ModeProbeJob, mode="batch")
    async def batched(job: ModeProbeJob, progress: object) -> None: ...

    @job_handler(PlainProbeJob)
    async def plain(job: PlainProbeJob, progress: object) -> None: ...

    assert (get_job_type("ModeProbeJob").mode, get_job_type("PlainProbeJob").mode) == ("batch", "job")
    with pytest.raises(ValueError, match="mode: must be one of job, batch, not 'bulk'"):
        job_handler(ModeProbeJob, mode="bulk")  # type: ignore[arg-type]


def test_settings_override_the_declared_mode_per_type():
    cfg = JobsWorkerSettings.model_validate({"modes": {"SendEmailJob": "batch"}, "batchSize": 500})
    assert cfg.mode_for("SendEmailJob", "job") == "batch"
    assert cfg.mode_for("BuildReportJob", "batch") == "batch"  # not overridden: as declared
    assert cfg.mode_for("BuildReportJob", "job") == "job"
    assert cfg.batch_size == 500
    assert JobsWorkerSettings.model_validate({"modes": "A=batch, B=job"}).modes == {"A": "batch", "B": "job"}


@pytest.mark.parametrize(("modes", "message"), [
    ({"SendEmailJob": "bulk"}, "SendEmailJob: mode must be one of job, batch"),
    ("SendEmailJob", "'SendEmailJob': expected JobType=mode"),
])
def test_a_bad_mode_names_the_job_type(modes, message):
    with pytest.raises(ValidationError, match=message):
        JobsWorkerSettings.model_validate({"modes": modes})
