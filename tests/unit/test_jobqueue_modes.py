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


def test_two_job_classes_of_one_name_in_different_modules_do_not_collide():
    """Issue 22 item 8: seed 002 stores the full type name. Two ``CollideJob`` classes of two
    modules are two job types; the bare name is refused as ambiguous, naming both."""
    import types

    from core.jobqueue.registry import UnknownJobType, aliases, type_name

    billing, marketing = types.ModuleType("billing"), types.ModuleType("marketing")
    kinds = []
    for module in (billing, marketing):
        cls = type("CollideJob", (BaseModel,), {"__module__": module.__name__})

        async def handle(job: BaseModel, progress: object) -> None: ...

        job_handler(cls)(handle)
        kinds.append(cls)
    assert [type_name(k) for k in kinds] == ["billing.CollideJob", "marketing.CollideJob"]
    assert get_job_type("billing.CollideJob").model is kinds[0]
    assert get_job_type("marketing.CollideJob").model is kinds[1]
    with pytest.raises(UnknownJobType, match="ambiguous: billing.CollideJob, marketing.CollideJob"):
        get_job_type("CollideJob")
    assert "CollideJob" not in aliases()
