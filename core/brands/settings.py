"""Settings of brand data collection and scoring (seed 003) and its collectors."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from core.config import DeferMaxSeconds, DeferSeconds, Section, env, http_url


class CollectorsSettings(Section):
    """AI-answer collectors (API_SHAPES.md section D): OpenAI, Perplexity, SerpAPI."""

    env_prefix = "COLLECTORS_"
    openai_base_url: str = Field("https://api.openai.com", alias="openaiBaseUrl", **env("OPENAI_BASE_URL"))
    openai_api_key: SecretStr = Field(SecretStr(""), alias="openaiApiKey", **env("OPENAI_API_KEY"))
    openai_model: str = Field("gpt-4o-mini", alias="openaiModel", **env("OPENAI_MODEL"))
    perplexity_base_url: str = Field("https://api.perplexity.ai", alias="perplexityBaseUrl",
                                     **env("PERPLEXITY_BASE_URL"))
    perplexity_api_key: SecretStr = Field(SecretStr(""), alias="perplexityApiKey", **env("PERPLEXITY_API_KEY"))
    perplexity_model: str = Field("sonar", alias="perplexityModel", **env("PERPLEXITY_MODEL"))
    serpapi_base_url: str = Field("https://serpapi.com", alias="serpapiBaseUrl", **env("SERPAPI_BASE_URL"))
    serpapi_api_key: SecretStr = Field(SecretStr(""), alias="serpapiApiKey", **env("SERPAPI_API_KEY"))
    timeout_seconds: float = Field(60, alias="timeoutSeconds", gt=0)
    max_retries: int = Field(3, alias="maxRetries", ge=0, le=10)
    backoff_ms: int = Field(1000, alias="backoffMs", ge=0)
    backoff_max_ms: int = Field(8000, alias="backoffMaxMs", ge=0)
    concurrency: int = Field(4, ge=1, le=64, description="answers collected at once within one run")
    defer_seconds: DeferSeconds = 300  # an answer refused for now: the brand's next run past it asks again
    defer_max_seconds: DeferMaxSeconds = 3600
    requests_per_minute: int = Field(0, alias="requestsPerMinute", ge=0, le=100_000,
                                     description="each provider key's plan limit; 0 = none configured")

    _urls = field_validator("openai_base_url", "perplexity_base_url", "serpapi_base_url")(http_url)


class BrandJobsSettings(Section):
    """Brand data collection and scoring (seed 003) and its admin API."""

    env_prefix = "BRAND_"
    admin_token: SecretStr = Field(SecretStr(""), alias="adminToken",
                                   description="bearer token of the admin API; empty = API refuses every call")
    run_timeout_seconds: float = Field(3600, alias="runTimeoutSeconds", gt=0)
    max_retries: int = Field(2, alias="maxRetries", ge=0, le=10, description="re-runs of a failed run")
    retry_backoff_seconds: float = Field(60, alias="retryBackoffSeconds", ge=0)
    brand_concurrency: int = Field(1, alias="brandConcurrency", ge=1, description="runs at once per brand",
                                   **env("BRAND_CONCURRENCY"))
    customer_concurrency: int = Field(3, alias="customerConcurrency", ge=1, description="runs at once per customer")
    notify_on_failure: bool = Field(True, alias="notifyOnFailure")
    max_body_bytes: int = Field(1_000_000, alias="maxBodyBytes", ge=1024,
                                description="the operations API refuses a larger request body (413)",
                                **env("API_MAX_BODY_BYTES"))
