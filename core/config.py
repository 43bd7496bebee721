"""Settings machinery shared by every family, and the kernel's own sections.

Each family declares its section beside its code (``core/<family>/settings.py``) as a
:class:`Section`. A section's environment variables are generated from its
``env_prefix`` and the field name (``RapidApiSettings.monthly_quota`` ->
``RAPIDAPI_MONTHLY_QUOTA``), or declared beside the field with ``env("NAME")`` where the
seeds spell them otherwise. ``core.settings`` composes the sections.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "config.yml"


def local_server_dir() -> Path:
    """Where this checkout's long-lived local Prefect server keeps its home, state and log
    (``deployments.dev.local_server``): ``$DATA_DIR/prefect``, by default ``.data/prefect``."""
    return Path(os.environ.get("DATA_DIR") or PROJECT_ROOT / ".data").resolve() / "prefect"


def env(name: str) -> dict[str, Any]:
    """``json_schema_extra`` naming a field's environment variable: ``Field(..., **env("X"))``."""
    return {"json_schema_extra": {"env": name}}


NO_ENV: dict[str, Any] = {"json_schema_extra": {"env": None}}
"""``Field(..., **NO_ENV)``: the field is read from the YAML file only."""


class Section(BaseModel):
    """A settings section: frozen, unknown keys refused, camelCase aliases as the seeds spell them.

    ``env_prefix`` prefixes the generated environment names of the section's fields;
    ``None`` means the section's fields are not read from the environment at all.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    env_prefix: ClassVar[str | None] = None


def upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def env_names(model: type[BaseModel], key_prefix: str = "", env_prefix: str | None = "") -> dict[str, str]:
    """Environment variable -> dotted config key, for every field of ``model`` and its sections."""
    names: dict[str, str] = {}
    for field_name, info in model.model_fields.items():
        key = f"{key_prefix}{info.alias or field_name}"
        annotation = info.annotation
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if isinstance(annotation, type) and issubclass(annotation, Section):
            prefix = annotation.env_prefix
            if prefix is None and env_prefix is not None and "env_prefix" not in annotation.__dict__:
                prefix = f"{env_prefix}{upper_snake(field_name)}_"
            names.update(env_names(annotation, f"{key}.", prefix))
            continue
        if "env" in extra:
            if extra["env"]:
                names[str(extra["env"])] = key
        elif env_prefix is not None:
            names[f"{env_prefix}{upper_snake(field_name)}"] = key
    return names


DeferSeconds = Annotated[float, Field(
    alias="deferSeconds", ge=0, description="an item the provider refused with 429/5xx after the retries waits "
                                            "this long (or the provider's Retry-After) before a run takes it again")]
"""A family's ``deferSeconds`` (``core.runs.deferral``): ``defer_seconds: DeferSeconds = 300``."""
DeferMaxSeconds = Annotated[float, Field(
    alias="deferMaxSeconds", ge=0, description="the longest an item is deferred, whatever Retry-After says")]
"""A family's ``deferMaxSeconds``, the cap of ``Retry-After``."""


def http_url(value: str) -> str:
    """A base URL without its trailing slash; ValueError when it is not http(s)."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


class DatabaseSettings(Section):
    """The application database (domain state, quota ledger, run history)."""

    env_prefix = "DATABASE_"
    url: str = Field("", description="SQLAlchemy URL; empty = sqlite file under dataDir")
    outage_budget_seconds: float = Field(60, alias="outageBudgetSeconds", ge=0,
                                         description="how long a run waits out an unreachable database "
                                                     "(backoff with jitter) before it stops")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].split("+", 1)[0].lower() if "://" in value else None
        if value and scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError(f"unsupported database {scheme or value!r}: use postgresql://user@host:5432/db "
                             "(psycopg 3) or sqlite:///path/to/file.db")
        return value


class StorageSettings(Section):
    """Object storage of the raw and cleaned JSON documents."""

    env_prefix = "STORAGE_"
    url: str = Field("", description="file:///path or s3://bucket/prefix; empty = <dataDir>/objects")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value and not re.match(r"^(file://|s3://[^/\s]+)", value):
            raise ValueError(f"{value!r} must start with file:// or s3://<bucket>")
        return value


class SmtpSettings(Section):
    """Outgoing mail; an empty host writes ``.eml`` files instead."""

    env_prefix = "SMTP_"
    host: str = Field("", description="empty = write .eml files to <dataDir>/outbox")
    port: int = Field(25, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    start_tls: bool = Field(False, alias="startTls", **env("SMTP_STARTTLS"))


NotifyPolicy = Literal["always", "problems", "failure", "never"]
NOTIFY_POLICIES: tuple[str, ...] = get_args(NotifyPolicy)


def check_policy(value: object, job: str | None = None) -> object:
    """A notify policy, or ValueError naming the job and the allowed values."""
    if value not in NOTIFY_POLICIES:
        where = f"{job}: " if job else ""
        raise ValueError(f"{where}{value!r} is not a notify policy (one of {', '.join(NOTIFY_POLICIES)})")
    return value


class NotifySettings(Section):
    """Who gets the run e-mails."""

    env_prefix = "NOTIFY_"
    email_to: str = Field("ops@example.com", alias="emailTo")
    email_from: str = Field("jobpipes@localhost", alias="emailFrom")
    enabled: bool = True
    policy: NotifyPolicy = Field("problems", description="when jobs without their own policy e-mail")
    jobs: dict[str, NotifyPolicy] = Field(
        default_factory=dict, description="job name -> policy; env: 'price_collection=never,ban_checker=always'")

    @field_validator("policy", mode="before")
    @classmethod
    def _one_policy(cls, value: object) -> object:
        return check_policy(value)

    @field_validator("jobs", mode="before")
    @classmethod
    def _job_policies(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [item.partition("=") for item in value.split(",") if item.strip()]
            if bad := [k for k, eq, _ in pairs if not eq]:
                raise ValueError(f"{bad[0].strip()!r}: expected job_name=policy")
            value = {k.strip(): v.strip() for k, _, v in pairs}
        if isinstance(value, dict):
            for job, policy in value.items():
                check_policy(policy, job)
        return value

    @field_validator("email_to", "email_from")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for address in value.split(","):
            if not re.match(r"^[^@\s,]+@[^@\s,]+$", address.strip()):
                raise ValueError(f"{address.strip()!r} is not an e-mail address")
        return value


class AlertsSettings(Section):
    """When a schedule that should fire does not: the alarms of the operations API."""

    env_prefix = "ALERTS_"
    enabled: bool = Field(True, description="create the alert automations and e-mail alarms")
    late_after_seconds: int = Field(
        300, ge=10, le=86_400, alias="lateAfterSeconds",
        description="a scheduled run still Late (not started) this long after its start time is an alarm")
    check_every_seconds: int = Field(
        60, ge=10, le=86_400, alias="checkEverySeconds",
        description="how often Prefect's watchdog automation asks the operations API to check every job")
    no_schedule_grace_seconds: int = Field(
        180, ge=0, le=86_400, alias="noScheduleGraceSeconds",
        description="an active schedule with no scheduled run in Prefect this long after its last change is an alarm")
    webhook_url: str = Field(
        "http://127.0.0.1:8090/api/v1/alerts/check", alias="webhookUrl",
        description="where Prefect's alert automations call the operations API (POST, bearer token)")

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)
