"""Settings of the application job queue's worker (seed 002 ``JobsWorker``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from core.config import NO_ENV, DeferMaxSeconds, DeferSeconds, Section, env
from core.jobqueue.recovery import stale_after
from core.jobqueue.registry import MODES, Mode


class JobsWorkerSettings(Section):
    """The application job queue's worker (seed 002 ``JobsWorker``)."""

    env_prefix = "JOBS_"
    scheduled_jobs_check_interval: timedelta = Field(timedelta(minutes=1), alias="scheduledJobsCheckInterval")
    orphaned_jobs_check_interval: timedelta = Field(timedelta(minutes=5), alias="orphanedJobsCheckInterval")
    orphaned_job_threshold: timedelta = Field(timedelta(minutes=30), alias="orphanedJobThreshold")
    heartbeat_seconds: float = Field(10, alias="heartbeatSeconds", gt=0)
    missed_heartbeats: int = Field(3, alias="missedHeartbeats", ge=2,
                                   description="a Running job silent this many heartbeats is orphaned")
    poll_interval_seconds: float = Field(0.5, alias="pollIntervalSeconds", gt=0)
    max_attempts: int = Field(3, alias="maxAttempts", ge=1)
    cancel_grace_seconds: float = Field(30, alias="cancelGraceSeconds", ge=0, description=(
        "after a cancel request, how long a handler has to stop by itself before the engine "
        "cancels its coroutine"))
    max_parallel: int = Field(10, alias="maxParallel", ge=1)
    defer_seconds: DeferSeconds = 300  # a job whose handler met a provider's "later": Pending, claimed from then
    defer_max_seconds: DeferMaxSeconds = 3600
    default_concurrency: int = Field(5, alias="defaultConcurrency", ge=1)
    concurrency: dict[str, int] = Field(default_factory=dict, description="job type -> limit", **NO_ENV)
    modes: dict[str, str] = Field(default_factory=dict, description="job type -> job | batch (overrides the "
                                  "mode declared with @job_handler); env: 'SendEmailJob=batch,BuildReportJob=job'")
    batch_size: int = Field(100, alias="batchSize", ge=1, le=10000,
                            description="most jobs one claim takes for a batch-mode type")
    modules: list[str] = Field(default_factory=lambda: ["core.jobqueue.examples"])
    name: str = Field("", **env("JOBS_WORKER_NAME"))

    @field_validator("scheduled_jobs_check_interval", "orphaned_jobs_check_interval", "orphaned_job_threshold")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be a positive duration")
        return value

    @field_validator("modes", mode="before")
    @classmethod
    def _modes(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [item.partition("=") for item in value.split(",") if item.strip()]
            if bad := [k for k, eq, _ in pairs if not eq]:
                raise ValueError(f"{bad[0].strip()!r}: expected JobType=mode")
            value = {k.strip(): v.strip() for k, _, v in pairs}
        if isinstance(value, dict):
            for job_type, mode in value.items():
                if mode not in MODES:
                    raise ValueError(f"{job_type}: mode must be one of {', '.join(MODES)}, not {mode!r}")
        return value

    @field_validator("modules", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [m.strip() for m in value.split(",") if m.strip()] if isinstance(value, str) else value

    @property
    def stale_after(self) -> timedelta:
        """Heartbeat age from which a Running job is orphaned (whoever claimed it)."""
        return stale_after(heartbeat_seconds=self.heartbeat_seconds, missed_heartbeats=self.missed_heartbeats,
                           threshold=self.orphaned_job_threshold)

    @property
    def orphan_check_every(self) -> timedelta:
        """How often a worker looks for orphans: the seed's interval, or sooner if a heartbeat
        goes stale sooner (the check is one indexed query plus one Prefect read)."""
        return min(self.orphaned_jobs_check_interval, self.stale_after)

    def limit_for(self, job_type: str) -> int:
        """By full type name, else by class name (``SendEmailJob=3``)."""
        short = job_type.rsplit(".", 1)[-1]
        return self.concurrency.get(job_type, self.concurrency.get(short, self.default_concurrency))

    def mode_for(self, job_type: str, declared: Mode) -> Mode:
        """The type's mode: ``modes`` in the settings, else the one declared with the handler."""
        short = job_type.rsplit(".", 1)[-1]
        return "batch" if self.modes.get(job_type, self.modes.get(short, declared)) == "batch" else "job"
