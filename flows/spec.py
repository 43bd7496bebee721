"""A job, declared once beside its flow: what deploy, serve, the operations API and prefect.yaml read.

Each family's flow module ends with its ``JOBS``, one :class:`JobSpec` per deployment;
``deployments.control.registry`` collects them (the way Dagster's ``Definitions`` lists a code
location's jobs and schedules). A spec names its flow, its deployment (the flow's name), its
title and description, tags, concurrency limit, default schedule (from settings: the first
deploy writes it into the job's config row, which holds it from then on) and where its
configuration row lives. A job without a default schedule is started by hand or by others
(``add-profile-entries``); a *shared* deployment carries one schedule per ``scheduled_jobs``
row (``brand-job``, ``enqueue-scheduled-job``), owned by that row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prefect import Flow
from pydantic import BaseModel

if TYPE_CHECKING:
    from core.config import NotifyPolicy
    from core.settings import Settings

ConfigTable = Literal["cron_job_configs", "job_configurations"]


@dataclass(frozen=True)
class DefaultSchedule:
    cron: str  # 5-field
    timezone: str = "UTC"
    active: bool = True
    # The settings that chose it when they differ from the shipped default (an environment
    # variable, config.yml): the overview reports them as drift when the config row, which
    # wins after the first deploy, says otherwise.
    source: str | None = None


@dataclass(frozen=True)
class JobSpec:
    flow: Flow[..., Any]
    family: str
    title: str
    description: str
    tags: tuple[str, ...] = ("jobpipes",)  # "jobpipes" marks the runs the automations watch
    schedule: Callable[[Settings], DefaultSchedule] | None = None  # the default, from settings
    concurrency: int | None = None  # at most this many runs at once (a deployment concurrency limit)
    config_table: ConfigTable | None = None  # where its row (schedule, timezone, active, knobs) lives
    config_key: str | None = None  # cron_job_configs.name or job_configurations.job_type
    config_model: type[BaseModel] | None = None  # validates the knobs of its row (``config``)
    config_defaults: Callable[[Settings], dict[str, Any]] | None = None  # the knobs of a new job_configurations row
    parameters_from_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # default run parameters
    shared: bool = False  # one schedule per scheduled_jobs row, owned by that row
    note: str | None = None  # a comment written above it in prefect.yaml
    # Its own e-mail policy, passed by its flow to run_job (None: notify.policy); notify.jobs overrides it.
    notify: NotifyPolicy | None = None
    # job_execution_history.job_name of its runs (None: the id with underscores, price_collection);
    # a shared job's rows keep their own executions (deployments.control.rows.History).
    history: str | None = None

    @property
    def id(self) -> str:
        """The job id: its flow's name, which is also its deployment's name."""
        return str(self.flow.name)

    @property
    def deployment(self) -> str:
        return f"{self.id}/{self.id}"

    @property
    def history_name(self) -> str:
        return self.history or self.id.replace("-", "_")

    def parameter_schema(self) -> dict[str, Any]:
        """Its run parameters as JSON schema: the flow's signature is the parameter model
        (the schema Prefect stores on the deployment and validates runs against)."""
        return dict(self.flow.parameters.model_dump_for_openapi())

    @property
    def entrypoint(self) -> str:
        """``flows/<module>.py:<function>``, as prefect.yaml names it."""
        fn = self.flow.fn
        path = Path(inspect.getfile(fn)).resolve()
        root = Path(__file__).resolve().parent.parent
        return f"{path.relative_to(root).as_posix()}:{fn.__name__}"

    def default_schedule(self, settings: Settings) -> DefaultSchedule | None:
        return self.schedule(settings) if self.schedule else None
