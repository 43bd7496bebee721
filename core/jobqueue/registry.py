"""Job types: a pydantic model plus an async handler, registered by type name."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import JobError, field_errors
from core.jobqueue.cancellation import Cancellation

M = TypeVar("M", bound=BaseModel)


class JobProgress(Protocol):
    """What a handler reports progress through (seed 002 ``IJobProgress``), and the job's
    cancellation token (seed 002's ``CancellationToken``, ``core.jobqueue.cancellation``)."""

    cancellation: Cancellation

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
    name: str  # the full type name, stored in jobs.job_type
    model: type[BaseModel]
    handler: Handler
    mode: Mode = "job"

    @property
    def short(self) -> str:
        """The class name alone (``SendEmailJob``): settings and plain-SQL writers may use it
        while it names one registered type."""
        return self.name.rsplit(".", 1)[-1]


_REGISTRY: dict[str, JobType] = {}


def type_name(job: BaseModel | type[BaseModel]) -> str:
    """The job type name (seed 002: the full type name, ``module.ClassName``), so two job
    classes of one name in different modules never collide; a model's ``job_type`` class
    attribute, when it has one, is used as given."""
    cls = job if isinstance(job, type) else type(job)
    declared = getattr(cls, "job_type", None)
    return str(declared) if declared else f"{cls.__module__}.{cls.__qualname__}"


def aliases() -> dict[str, str]:
    """Short name -> full name, for the short names that name exactly one registered type."""
    by_short: dict[str, list[str]] = {}
    for kind in _REGISTRY.values():
        by_short.setdefault(kind.short, []).append(kind.name)
    return {short: names[0] for short, names in by_short.items() if len(names) == 1 and short != names[0]}


def resolve(name: str) -> str:
    """The full name of the job type ``name`` names: itself, or the one type of that short name;
    UnknownJobType (listing the candidates when the short name is ambiguous) otherwise."""
    if name in _REGISTRY:
        return name
    if (full := aliases().get(name)) is not None:
        return full
    same = sorted(k.name for k in _REGISTRY.values() if k.short == name)
    if same:
        raise UnknownJobType(f"job type {name!r} is ambiguous: {', '.join(same)}; use the full name")
    known = ", ".join(sorted(_REGISTRY)) or "none"
    raise UnknownJobType(f"unknown job type {name!r} (registered: {known})")


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
    """The registered type of a full name, or of a short name that names one type."""
    return _REGISTRY[resolve(name)]


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
