"""What a brand job is asked to do (seed 003), validated before anything runs.

The metadata keeps the seed's spelling (``positionLimit``, ``sentimentLimit``) because it
is what administrators type into the admin API and the Prefect UI's run form.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from croniter import CroniterBadDateError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.brands.client import COLLECTORS
from core.cron import next_run, validate_schedule
from core.errors import ConfigError, field_errors

JOB_TYPES = ("data_collection", "scoring", "data_collection_and_scoring")
JobType = Literal["data_collection", "scoring", "data_collection_and_scoring"]


class JobMetadata(BaseModel):
    """Per-run options; unknown keys are refused so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)

    collectors: list[str] = Field(default_factory=lambda: list(COLLECTORS), min_length=1)
    parallel: bool = False
    position_limit: int = Field(50, alias="positionLimit", ge=1, le=100_000)
    sentiment_limit: int = Field(50, alias="sentimentLimit", ge=1, le=100_000)
    timeout_seconds: float | None = Field(None, alias="timeoutSeconds", gt=0, le=7 * 24 * 3600)
    max_retries: int | None = Field(None, alias="maxRetries", ge=0, le=10)

    @field_validator("collectors")
    @classmethod
    def _known_collectors(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in COLLECTORS]
        if unknown:
            raise ValueError(f"unknown collector(s) {', '.join(map(repr, unknown))}; known: {', '.join(COLLECTORS)}")
        return list(dict.fromkeys(value))

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def parse_metadata(raw: dict[str, Any] | None) -> JobMetadata:
    """Validate metadata; raise ConfigError naming the field (``metadata.collectors``)."""
    try:
        return JobMetadata.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(field_errors(exc, "metadata")) from None


def parse_job_type(value: str) -> str:
    if value not in JOB_TYPES:
        raise ConfigError(f"job_type: unknown job type {value!r}; known: {', '.join(JOB_TYPES)}")
    return value


def parse_uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ConfigError(f"{field}: {value!r} is not a UUID") from None


def parse_schedule(cron: str, timezone: str) -> str:
    """The 5-field cron to store; ConfigError naming ``cron_expression`` or ``timezone``.

    Checked the way it will be used: a cron and zone that schedules accept, and it must
    fire at least once (``0 0 31 2 *`` never does)."""
    try:
        cron = validate_schedule(cron, timezone)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        next_run(cron, timezone, datetime.now(UTC))
    except (CroniterBadDateError, ValueError):
        raise ConfigError(f"cron_expression: {cron!r} never fires") from None
    return cron


class UnknownIdError(LookupError):
    """An id in a path that names nothing (HTTP 404); the message starts with the field."""
