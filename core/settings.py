"""Settings from ``config/config.yml`` plus environment overrides, validated up front.

Precedence: keyword arguments > environment variables > the YAML file > defaults.
Every error names the key that was wrong (``rapidapi.rateLimitBackoffMs``) and, where one
exists, the environment variable that sets it.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "config.yml"

# Environment variable -> dotted config key. Only these are read from the environment.
ENV_KEYS: dict[str, str] = {
    "DATABASE_URL": "database.url",
    "DATA_DIR": "dataDir",
    "CRON_PROFILE_FETCHER_SCHEDULE": "cron.profileFetcherSchedule",
    "CRON_QUOTA_RESET_SCHEDULE": "cron.quotaResetSchedule",
    "CRON_TIMEZONE": "cron.timezone",
    "CRON_BATCH_SIZE": "cron.batchSize",
    "RAPIDAPI_BASE_URL": "rapidapi.baseUrl",
    "RAPIDAPI_KEY": "rapidapi.key",
    "RAPIDAPI_HOST": "rapidapi.host",
    "RAPIDAPI_MONTHLY_QUOTA": "rapidapi.monthlyQuota",
    "RAPIDAPI_TIMEOUT_SECONDS": "rapidapi.timeoutSeconds",
    "RAPIDAPI_CONCURRENCY": "rapidapi.concurrency",
    "RAPIDAPI_RATE_LIMIT_MAX_RETRIES": "rapidapi.rateLimitMaxRetries",
    "RAPIDAPI_RATE_LIMIT_BACKOFF_MS": "rapidapi.rateLimitBackoffMs",
    "RAPIDAPI_RATE_LIMIT_BACKOFF_MAX_MS": "rapidapi.rateLimitBackoffMaxMs",
    "STORAGE_URL": "storage.url",
    "SMTP_HOST": "smtp.host",
    "SMTP_PORT": "smtp.port",
    "SMTP_USERNAME": "smtp.username",
    "SMTP_PASSWORD": "smtp.password",
    "SMTP_STARTTLS": "smtp.startTls",
    "NOTIFY_EMAIL_TO": "notify.emailTo",
    "NOTIFY_EMAIL_FROM": "notify.emailFrom",
    "NOTIFY_ENABLED": "notify.enabled",
    "JOBS_SCHEDULED_JOBS_CHECK_INTERVAL": "jobsWorker.scheduledJobsCheckInterval",
    "JOBS_ORPHANED_JOBS_CHECK_INTERVAL": "jobsWorker.orphanedJobsCheckInterval",
    "JOBS_ORPHANED_JOB_THRESHOLD": "jobsWorker.orphanedJobThreshold",
    "JOBS_HEARTBEAT_SECONDS": "jobsWorker.heartbeatSeconds",
    "JOBS_POLL_INTERVAL_SECONDS": "jobsWorker.pollIntervalSeconds",
    "JOBS_MAX_ATTEMPTS": "jobsWorker.maxAttempts",
    "JOBS_MAX_PARALLEL": "jobsWorker.maxParallel",
    "JOBS_DEFAULT_CONCURRENCY": "jobsWorker.defaultConcurrency",
    "JOBS_MODULES": "jobsWorker.modules",
    "JOBS_WORKER_NAME": "jobsWorker.name",
    "RIOT_API_KEY": "riot.apiKey",
    "RIOT_BASE_URL_TEMPLATE": "riot.baseUrlTemplate",
    "OPENAI_BASE_URL": "collectors.openaiBaseUrl",
    "OPENAI_API_KEY": "collectors.openaiApiKey",
    "PERPLEXITY_BASE_URL": "collectors.perplexityBaseUrl",
    "PERPLEXITY_API_KEY": "collectors.perplexityApiKey",
    "SERPAPI_BASE_URL": "collectors.serpapiBaseUrl",
    "SERPAPI_API_KEY": "collectors.serpapiApiKey",
    "COLLECTORS_MAX_RETRIES": "collectors.maxRetries",
    "COLLECTORS_BACKOFF_MS": "collectors.backoffMs",
    "COLLECTORS_BACKOFF_MAX_MS": "collectors.backoffMaxMs",
    "COLLECTORS_CONCURRENCY": "collectors.concurrency",
    "BRAND_ADMIN_TOKEN": "brandJobs.adminToken",
    "BRAND_MAX_RETRIES": "brandJobs.maxRetries",
    "BRAND_RETRY_BACKOFF_SECONDS": "brandJobs.retryBackoffSeconds",
    "BRAND_RUN_TIMEOUT_SECONDS": "brandJobs.runTimeoutSeconds",
    "COINGECKO_BASE_URL": "coingecko.baseUrl",
    "COINGECKO_API_KEY": "coingecko.apiKey",
    "COINGECKO_PLAN": "coingecko.plan",
    "COINGECKO_CALLS_PER_MINUTE": "coingecko.callsPerMinute",
    "COINGECKO_RATE_LIMIT_BACKOFF_MS": "coingecko.rateLimitBackoffMs",
    **{
        f"{prefix}_{knob.upper()}": f"cryptoJobs.{key}.{knob}"
        for prefix, key in (
            ("TOP_COINS_COLLECTION", "topCoinsCollection"),
            ("PRICE_COLLECTION", "priceCollection"),
            ("CONTRACT_ADDRESSES_COLLECTION", "contractAddressesCollection"),
        )
        for knob in ("enabled", "schedule", "limit")
    },
}
_KEY_TO_ENV = {key: env for env, key in ENV_KEYS.items()}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def to_prefect_cron(value: str) -> str:
    """Accept 5-field cron, or the seed's 6-field cron with a leading seconds field of 0.

    ``"0 0 0 * * *"`` becomes ``"0 0 * * *"``. Any other seconds value is refused rather
    than silently misread: Prefect schedules fire on whole minutes.
    """
    fields = value.split()
    if len(fields) == 6:
        if fields[0] not in ("0", "00"):
            raise ValueError(
                f"{value!r} is a 6-field cron with seconds={fields[0]!r}; only a seconds field"
                " of 0 can be honoured (schedules run on whole minutes)"
            )
        fields = fields[1:]
    return _check_cron(" ".join(fields))


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a 5-field cron expression (minute hour day month weekday);"
            f" got {len(fields)} fields"
        )
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression")
    return value


def _http_url(value: str) -> str:
    """A base URL without its trailing slash; ValueError when it is not http(s)."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


class CronSettings(_Section):
    """Schedules and batch knobs of the profile fetcher (seed 000 ``cron.*``)."""

    profile_fetcher_schedule: str = Field("*/15 * * * *", alias="profileFetcherSchedule")
    quota_reset_schedule: str = Field("0 0 1 * *", alias="quotaResetSchedule")
    timezone: str = Field("UTC", description="IANA timezone of the schedules")
    batch_size: int = Field(10, alias="batchSize", ge=1, le=1000)
    fetching_timeout_minutes: int = Field(30, alias="fetchingTimeoutMinutes", ge=1)

    _cron = field_validator("profile_fetcher_schedule", "quota_reset_schedule")(_check_cron)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class RapidApiSettings(_Section):
    """RapidAPI LinkedIn client and quota knobs (seed 000 ``rapidapi.*``)."""

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

    _url = field_validator("base_url")(lambda v: _http_url(v))


class CoinGeckoSettings(_Section):
    """CoinGecko v3 client (API_SHAPES.md section C)."""

    base_url: str = Field("http://127.0.0.1:8082/api/v3", alias="baseUrl")
    api_key: SecretStr = Field(SecretStr("sandbox-cg-key"), alias="apiKey")
    plan: Literal["demo", "pro"] = "demo"
    calls_per_minute: int = Field(30, alias="callsPerMinute", ge=1, le=10_000)
    timeout_seconds: float = Field(30, alias="timeoutSeconds", gt=0)
    rate_limit_max_retries: int = Field(3, alias="rateLimitMaxRetries", ge=0, le=20)
    rate_limit_backoff_ms: int = Field(2000, alias="rateLimitBackoffMs", ge=0)
    rate_limit_backoff_max_ms: int = Field(60_000, alias="rateLimitBackoffMaxMs", ge=0)

    _url = field_validator("base_url")(lambda v: _http_url(v))

    @property
    def key_header(self) -> str:
        return "x-cg-pro-api-key" if self.plan == "pro" else "x-cg-demo-api-key"


class CryptoJobSettings(_Section):
    """One crypto job's ``*_ENABLED``, ``*_SCHEDULE`` and ``*_LIMIT`` (seed 004)."""

    enabled: bool = True
    schedule: str
    limit: int | None = Field(None, ge=1, le=10_000)

    @field_validator("limit", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    _cron = field_validator("schedule")(to_prefect_cron)


_CRYPTO_DEFAULTS: dict[str, dict[str, Any]] = {
    "topCoinsCollection": {"schedule": "0 0 * * *", "limit": 100},
    "priceCollection": {"schedule": "*/15 * * * *", "limit": 100},
    "contractAddressesCollection": {"schedule": "0 1 * * *", "limit": None},
}


class CryptoJobsSettings(_Section):
    """The three crypto jobs; a job given only some keys keeps the seed's other defaults."""

    top_coins_collection: CryptoJobSettings = Field(alias="topCoinsCollection")
    price_collection: CryptoJobSettings = Field(alias="priceCollection")
    contract_addresses_collection: CryptoJobSettings = Field(alias="contractAddressesCollection")

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for key, defaults in _CRYPTO_DEFAULTS.items():
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
            given = merged.pop(snake, None) or merged.get(key) or {}
            merged[key] = {**defaults, **given} if isinstance(given, dict) else given
        return merged


class RiotSettings(_Section):
    """Riot Games API client (API_SHAPES.md section B)."""

    api_key: SecretStr = Field(SecretStr("RGAPI-sandbox"), alias="apiKey")
    base_url_template: str = Field("https://{route}.api.riotgames.com", alias="baseUrlTemplate")
    app_rate_limit: str = Field("20:1,100:120", alias="appRateLimit", description="until headers say otherwise")
    timeout_seconds: float = Field(10, alias="timeoutSeconds", gt=0)

    @field_validator("base_url_template")
    @classmethod
    def _has_route(cls, value: str) -> str:
        if "{route}" not in value or not re.match(r"^https?://", value):
            raise ValueError(f"{value!r} must be an http(s) URL containing {{route}}")
        return value.rstrip("/")


class CollectorsSettings(_Section):
    """AI-answer collectors (API_SHAPES.md section D): OpenAI, Perplexity, SerpAPI."""

    openai_base_url: str = Field("https://api.openai.com", alias="openaiBaseUrl")
    openai_api_key: SecretStr = Field(SecretStr(""), alias="openaiApiKey")
    openai_model: str = Field("gpt-4o-mini", alias="openaiModel")
    perplexity_base_url: str = Field("https://api.perplexity.ai", alias="perplexityBaseUrl")
    perplexity_api_key: SecretStr = Field(SecretStr(""), alias="perplexityApiKey")
    perplexity_model: str = Field("sonar", alias="perplexityModel")
    serpapi_base_url: str = Field("https://serpapi.com", alias="serpapiBaseUrl")
    serpapi_api_key: SecretStr = Field(SecretStr(""), alias="serpapiApiKey")
    timeout_seconds: float = Field(60, alias="timeoutSeconds", gt=0)
    max_retries: int = Field(3, alias="maxRetries", ge=0, le=10)
    backoff_ms: int = Field(1000, alias="backoffMs", ge=0)
    backoff_max_ms: int = Field(8000, alias="backoffMaxMs", ge=0)
    concurrency: int = Field(4, ge=1, le=64, description="answers collected at once within one run")

    _urls = field_validator("openai_base_url", "perplexity_base_url", "serpapi_base_url")(lambda v: _http_url(v))


class BrandJobsSettings(_Section):
    """Brand data collection and scoring (seed 003) and its admin API."""

    admin_token: SecretStr = Field(SecretStr(""), alias="adminToken",
                                   description="bearer token of the admin API; empty = API refuses every call")
    run_timeout_seconds: float = Field(3600, alias="runTimeoutSeconds", gt=0)
    max_retries: int = Field(2, alias="maxRetries", ge=0, le=10, description="re-runs of a failed run")
    retry_backoff_seconds: float = Field(60, alias="retryBackoffSeconds", ge=0)
    brand_concurrency: int = Field(1, alias="brandConcurrency", ge=1, description="runs at once per brand")
    customer_concurrency: int = Field(3, alias="customerConcurrency", ge=1, description="runs at once per customer")
    notify_on_failure: bool = Field(True, alias="notifyOnFailure")


class JobsWorkerSettings(_Section):
    """The application job queue's worker (seed 002 ``JobsWorker``)."""

    scheduled_jobs_check_interval: timedelta = Field(timedelta(minutes=1), alias="scheduledJobsCheckInterval")
    orphaned_jobs_check_interval: timedelta = Field(timedelta(minutes=5), alias="orphanedJobsCheckInterval")
    orphaned_job_threshold: timedelta = Field(timedelta(minutes=30), alias="orphanedJobThreshold")
    heartbeat_seconds: float = Field(10, alias="heartbeatSeconds", gt=0)
    poll_interval_seconds: float = Field(0.5, alias="pollIntervalSeconds", gt=0)
    max_attempts: int = Field(3, alias="maxAttempts", ge=1)
    max_parallel: int = Field(10, alias="maxParallel", ge=1)
    default_concurrency: int = Field(5, alias="defaultConcurrency", ge=1)
    concurrency: dict[str, int] = Field(default_factory=dict)
    modules: list[str] = Field(default_factory=lambda: ["core.jobqueue.examples"])
    name: str = ""

    @field_validator("scheduled_jobs_check_interval", "orphaned_jobs_check_interval", "orphaned_job_threshold")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be a positive duration")
        return value

    @field_validator("modules", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [m.strip() for m in value.split(",") if m.strip()] if isinstance(value, str) else value

    def limit_for(self, job_type: str) -> int:
        return self.concurrency.get(job_type, self.default_concurrency)


class StorageSettings(_Section):
    url: str = Field("", description="file:///path or s3://bucket/prefix; empty = <dataDir>/objects")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value and not re.match(r"^(file://|s3://[^/\s]+)", value):
            raise ValueError(f"{value!r} must start with file:// or s3://<bucket>")
        return value


class SmtpSettings(_Section):
    host: str = Field("", description="empty = write .eml files to <dataDir>/outbox")
    port: int = Field(25, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    start_tls: bool = Field(False, alias="startTls")


class NotifySettings(_Section):
    email_to: str = Field("ops@example.com", alias="emailTo")
    email_from: str = Field("jobpipes@localhost", alias="emailFrom")
    enabled: bool = True

    @field_validator("email_to", "email_from")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for address in value.split(","):
            if not re.match(r"^[^@\s,]+@[^@\s,]+$", address.strip()):
                raise ValueError(f"{address.strip()!r} is not an e-mail address")
        return value


class DatabaseSettings(_Section):
    url: str = Field("", description="SQLAlchemy URL; empty = sqlite file under dataDir")


class _EnvSource(PydanticBaseSettingsSource):
    """Reads exactly the variables in ENV_KEYS and nests them under their config keys."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for env, dotted in ENV_KEYS.items():
            if env in os.environ:
                _set_dotted(tree, dotted, os.environ[env])
        return tree


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``CONFIG_FILE`` (default ``config/config.yml``)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("CONFIG_FILE") or DEFAULT_CONFIG_FILE)
        if not path.exists():
            if "CONFIG_FILE" in os.environ:
                raise ConfigError(f"CONFIG_FILE: {path} does not exist")
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        return data


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


class Settings(BaseSettings):
    """All settings of the product; build with :func:`load_settings`."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    data_dir: Path = Field(PROJECT_ROOT / ".data", alias="dataDir")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cron: CronSettings = Field(default_factory=CronSettings)
    rapidapi: RapidApiSettings = Field(default_factory=RapidApiSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    coingecko: CoinGeckoSettings = Field(default_factory=CoinGeckoSettings)
    jobs_worker: JobsWorkerSettings = Field(default_factory=JobsWorkerSettings, alias="jobsWorker")
    riot: RiotSettings = Field(default_factory=RiotSettings)
    collectors: CollectorsSettings = Field(default_factory=CollectorsSettings)
    brand_jobs: BrandJobsSettings = Field(default_factory=BrandJobsSettings, alias="brandJobs")
    crypto_jobs: CryptoJobsSettings = Field(
        default_factory=lambda: CryptoJobsSettings.model_validate({}), alias="cryptoJobs")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvSource(settings_cls), _YamlSource(settings_cls)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'jobpipes.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or (self.data_dir / "objects").as_uri()

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


def _describe(error: Any) -> str:
    path = ".".join(str(p) for p in error["loc"])
    camel = _camel_path(error["loc"])
    env = _KEY_TO_ENV.get(camel)
    where = f"{camel} (env {env})" if env else camel
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown configuration key"
    value = error.get("input")
    shown = "" if "key" in path or "password" in path else f" (got {value!r})"
    return f"{where}: {error['msg']}{shown}"


def _camel_path(loc: tuple[Any, ...]) -> str:
    parts = []
    for part in loc:
        text = str(part)
        head, *rest = text.split("_")
        parts.append(head + "".join(w.capitalize() for w in rest))
    return ".".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from YAML + environment + ``overrides``; raise ConfigError naming bad keys."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()
