"""Settings of the profile fetcher (seed 000 ``cron.*`` and ``rapidapi.*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from core.config import Section, http_url
from core.cron import check_cron, check_timezone


class CronSettings(Section):
    """Schedules and batch knobs of the profile fetcher (seed 000 ``cron.*``)."""

    env_prefix = "CRON_"
    profile_fetcher_schedule: str = Field("*/15 * * * *", alias="profileFetcherSchedule")
    quota_reset_schedule: str = Field("0 0 1 * *", alias="quotaResetSchedule")
    timezone: str = Field("UTC", description="IANA timezone of the schedules")
    batch_size: int = Field(10, alias="batchSize", ge=1, le=1000)
    fetching_timeout_minutes: int = Field(30, alias="fetchingTimeoutMinutes", ge=1)

    _cron = field_validator("profile_fetcher_schedule", "quota_reset_schedule")(check_cron)

    _timezone = field_validator("timezone")(check_timezone)


class RapidApiSettings(Section):
    """RapidAPI LinkedIn client and quota knobs (seed 000 ``rapidapi.*``)."""

    env_prefix = "RAPIDAPI_"
    base_url: str = Field("http://127.0.0.1:8081", alias="baseUrl")
    key: SecretStr = Field(SecretStr("sandbox-key"), description="x-rapidapi-key; never logged")
    host: str = "linkedin-data-api.p.rapidapi.com"
    profile_path: str = Field("/", alias="profilePath")
    monthly_quota: int = Field(500, alias="monthlyQuota", ge=0)
    timeout_seconds: float = Field(30, alias="timeoutSeconds", gt=0)
    concurrency: int = Field(5, ge=1, le=100)
    rate_limit_max_retries: int = Field(3, alias="rateLimitMaxRetries", ge=0, le=20)
    rate_limit_backoff_ms: int = Field(1000, alias="rateLimitBackoffMs", ge=0)
    rate_limit_backoff_max_ms: int = Field(8000, alias="rateLimitBackoffMaxMs", ge=0)
    transient_error_retries: int = Field(1, alias="transientErrorRetries", ge=0, le=10)
    defer_seconds: float = Field(300, alias="deferSeconds", ge=0,
                                 description="an entry refused with 429/5xx after the retries waits this long "
                                             "(or the provider's Retry-After) before a run takes it again")
    defer_max_seconds: float = Field(3600, alias="deferMaxSeconds", ge=0,
                                     description="the longest an entry is deferred, whatever Retry-After says")
    batches_in_flight: int = Field(2, alias="batchesInFlight", ge=1, le=16,
                                   description="batches a run fetches and writes at once (a pipeline)")
    entries_per_task: int = Field(1000, alias="entriesPerTask", ge=1, le=1_000_000,
                                  description="entries one fetch-profiles task claims before the run starts the next")
    share_dead_after_seconds: float = Field(30, alias="shareDeadAfterSeconds", ge=5, le=3600,
                                            description="a run's share silent this long is taken for dead and released")
    requests_per_second: int = Field(0, alias="requestsPerSecond", ge=0, le=10_000,
                                     description="the plan's per-second limit; 0 = none configured")

    _url = field_validator("base_url")(http_url)
