"""Job types: a pydantic model plus an async handler, registered by type name."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import JobError, field_errors

M = TypeVar("M", bound=BaseModel)


class JobProgress(Protocol):
    """What a handler reports progress through (seed 002 ``IJobProgress``)."""

    async def report(self, message: str, percent: int | None = None) -> None: ...


Handler = Callable[[Any, JobProgress], Awaitable[None]]

Mode = Literal["job", "batch"]
"""How jobs of a type show in Prefect: ``job`` = one ``execute-job`` task run per job;
``batch`` = one ``execute-job-batch`` task run per claimed batch, whose table artifact
and logs list each job with its status, duration and error."""
MODES: tuple[Mode, ...] = ("job", "batch")


class UnknownJobType(JobError):
    """No handler is registered for this job type."""


class InvalidJobData(JobError):
    """The stored job_data does not validate against the job type's model."""


@dataclass(frozen=True)
class JobType:
    name: str
    model: type[BaseModel]
    handler: Handler
    mode: Mode = "job"


_REGISTRY: dict[str, JobType] = {}


def type_name(job: BaseModel | type[BaseModel]) -> str:
    """The job type name: the model's ``job_type`` class attribute, else its class name."""
    cls = job if isinstance(job, type) else type(job)
    return str(getattr(cls, "job_type", None) or cls.__name__)


def job_handler(model: type[M], *, mode: Mode = "job") -> Callable[[Callable[[M, JobProgress], Awaitable[None]]],
                                                                   Handler]:
    """Register ``async def handle(job, progress)`` as the handler of ``model``'s job type.

    ``mode`` is the type's default Prefect granularity (``"job"`` or ``"batch"``, see
    ``Mode``); ``jobsWorker.modes`` overrides it per type.
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}, not {mode!r}")

    def register(handler: Callable[[M, JobProgress], Awaitable[None]]) -> Handler:
        name = type_name(model)
        existing = _REGISTRY.get(name)
        if existing and existing.handler is not handler and existing.handler.__qualname__ != handler.__qualname__:
            raise ValueError(f"job type {name!r} is already registered to {existing.handler.__qualname__}")
        _REGISTRY[name] = JobType(name, model, handler, mode)
        return handler

    return register


def get_job_type(name: str) -> JobType:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UnknownJobType(f"unknown job type {name!r} (registered: {known})") from None


def registered() -> list[str]:
    return sorted(_REGISTRY)


def parse_job(job_type: JobType, data: dict[str, Any]) -> BaseModel:
    """Validate stored job_data; the error names every bad field."""
    try:
        return job_type.model.model_validate(data)
    except ValidationError as exc:
        raise InvalidJobData(f"invalid job_data for {job_type.name}: {field_errors(exc)}") from None


def load_modules(modules: Iterable[str]) -> None:
    """Import the modules whose ``@job_handler`` decorators register job types."""
    for module in modules:
        importlib.import_module(module)
