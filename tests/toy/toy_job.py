"""A job of the test's own: one flow and one spec, nothing else edited (issue 18)."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from core.runs.result import JobMetrics, JobResult
from flows.spec import DefaultSchedule, JobSpec
from tasks.runs import final_state, run_job


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = Field("hello", min_length=1, max_length=40)


@flow(name="toy-job")
async def toy_job(greeting: str = "hello") -> JobResult:
    async def body(m: JobMetrics) -> None:
        m.items_processed = len(greeting)

    return final_state(await run_job("toy_job", "TOY_JOB", body, params={"greeting": greeting}))


JOBS = (
    JobSpec(toy_job, "toys", "Toy job", "A job declared by a test.", tags=("jobpipes", "toys"),
            schedule=lambda _settings: DefaultSchedule("*/30 * * * *", "UTC"), concurrency=2,
            config_table="job_configurations", config_key="TOY_JOB", config_model=ToyConfig,
            config_defaults=lambda _settings: {"greeting": "hello"},
            parameters_from_config=lambda config: {"greeting": config["greeting"]}),
)
