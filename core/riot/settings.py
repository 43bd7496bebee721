"""Settings of the Riot client (API_SHAPES.md section B)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from core.config import DeferMaxSeconds, DeferSeconds, Section


class RiotSettings(Section):
    """Riot Games API client (API_SHAPES.md section B)."""

    env_prefix = "RIOT_"
    api_key: SecretStr = Field(SecretStr("RGAPI-sandbox"), alias="apiKey")
    base_url_template: str = Field("https://{route}.api.riotgames.com", alias="baseUrlTemplate")
    app_rate_limit: str = Field("20:1,100:120", alias="appRateLimit", description="until headers say otherwise")
    timeout_seconds: float = Field(10, alias="timeoutSeconds", gt=0)
    defer_seconds: DeferSeconds = 300  # a player Riot answered 5xx for: left alone until then
    defer_max_seconds: DeferMaxSeconds = 3600

    @field_validator("base_url_template")
    @classmethod
    def _has_route(cls, value: str) -> str:
        if "{route}" not in value or not re.match(r"^https?://", value):
            raise ValueError(f"{value!r} must be an http(s) URL containing {{route}}")
        return value.rstrip("/")
