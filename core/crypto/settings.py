"""Settings of the crypto jobs (seed 004): the CoinGecko client and the three jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from core.config import DeferMaxSeconds, DeferSeconds, Section, http_url, upper_snake
from core.cron import to_prefect_cron


class CoinGeckoSettings(Section):
    """CoinGecko v3 client (API_SHAPES.md section C)."""

    env_prefix = "COINGECKO_"
    base_url: str = Field("http://127.0.0.1:8082/api/v3", alias="baseUrl")
    api_key: SecretStr = Field(SecretStr("sandbox-cg-key"), alias="apiKey")
    plan: Literal["demo", "pro"] = "demo"
    calls_per_minute: int = Field(30, alias="callsPerMinute", ge=1, le=10_000)
    timeout_seconds: float = Field(30, alias="timeoutSeconds", gt=0)
    rate_limit_max_retries: int = Field(3, alias="rateLimitMaxRetries", ge=0, le=20)
    rate_limit_backoff_ms: int = Field(2000, alias="rateLimitBackoffMs", ge=0)
    rate_limit_backoff_max_ms: int = Field(60_000, alias="rateLimitBackoffMaxMs", ge=0)
    defer_seconds: DeferSeconds = 300  # a coin's details refused for now: contract collection skips it until then
    defer_max_seconds: DeferMaxSeconds = 3600

    _url = field_validator("base_url")(http_url)

    @property
    def key_header(self) -> str:
        return "x-cg-pro-api-key" if self.plan == "pro" else "x-cg-demo-api-key"


JobLimit = Annotated[int | None, Field(ge=1, le=10_000, description="coins/assets per run; null: the job's default")]
"""The one bound of a crypto job's ``limit``: settings, the job's config row, the API and the flows."""


class CryptoJobConfig(BaseModel):
    """Seed 004's knob of a job (its ``job_configurations.config_json``)."""

    model_config = ConfigDict(extra="forbid")
    limit: JobLimit = None


def checked_limit(value: int | None) -> int | None:
    """``value`` within the bounds; ValueError (a ValidationError) naming ``limit`` otherwise."""
    return CryptoJobConfig(limit=value).limit


class CryptoJobSettings(Section):
    """One crypto job's ``*_ENABLED``, ``*_SCHEDULE`` and ``*_LIMIT`` (seed 004)."""

    enabled: bool = True
    schedule: str
    limit: JobLimit = None

    @field_validator("limit", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    _cron = field_validator("schedule")(to_prefect_cron)


# The seed's defaults: the one source of each crypto job's default schedule.
CRYPTO_DEFAULTS: dict[str, dict[str, Any]] = {
    "topCoinsCollection": {"schedule": "0 0 * * *", "limit": 100},
    "priceCollection": {"schedule": "*/15 * * * *", "limit": 100},
    "contractAddressesCollection": {"schedule": "0 1 * * *", "limit": None},
}


class CryptoJobsSettings(Section):
    """The three crypto jobs; a job given only some keys keeps the seed's other defaults.

    Environment names follow the seed: ``TOP_COINS_COLLECTION_ENABLED`` and so on.
    """

    env_prefix = ""
    top_coins_collection: CryptoJobSettings = Field(alias="topCoinsCollection")
    price_collection: CryptoJobSettings = Field(alias="priceCollection")
    contract_addresses_collection: CryptoJobSettings = Field(alias="contractAddressesCollection")

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for key, defaults in CRYPTO_DEFAULTS.items():
            snake = upper_snake(key).lower()
            given = merged.pop(snake, None) or merged.get(key) or {}
            merged[key] = {**defaults, **given} if isinstance(given, dict) else given
        return merged
