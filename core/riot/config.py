"""``job_configurations.config_json`` validated by one pydantic model per job type."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.job_configurations import JobConfiguration
from core.errors import ConfigError, field_errors
from core.riot.analysis import Thresholds, Weights
from core.riot.client import PLATFORM_REGION


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Platform(_Config):
    # Each player is always fetched on their own platform (riot_players.platform); this only
    # narrows which players the job takes.
    platform: str | None = Field(None, description="only players on this platform, e.g. na1 (unset: every platform)")

    @field_validator("platform")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in PLATFORM_REGION:
            raise ValueError(f"unknown platform {value!r}")
        return value.lower() if value is not None else None


MatchType = Literal["ranked", "normal", "tourney", "tutorial"]


class _Matches(_Platform):
    # match-v5's own filter: "ranked" lists solo/duo and flex games only, so Arena, ARAM,
    # Swiftplay and co-op-vs-AI games are never fetched as smurf evidence. null: every game.
    match_type: MatchType | None = Field("ranked", description="match-v5 type filter of the match ids "
                                                               "(ranked, normal, tourney, tutorial; null: all)")


class TrackedPlayerUpdaterConfig(_Matches):
    max_new_matches_per_player: int = Field(ge=1, le=100)
    max_tracked_players: int = Field(ge=1)


class MatchFetcherConfig(_Matches):
    discovered_players_per_run: int = Field(ge=1)
    matches_per_player_per_run: int = Field(ge=1, le=100)
    target_matches_per_player: int = Field(ge=1)


class SmurfAnalyzerConfig(_Config):
    unanalyzed_players_per_run: int = Field(ge=1)
    min_matches_required: int = Field(ge=1)
    thresholds: Thresholds = Field(default_factory=Thresholds, description="when each signal fires")
    weights: Weights = Field(default_factory=Weights, description="what each fired signal adds to the score")
    collect_ranks: bool = Field(True, description="snapshot league-v4 entries of the analysed players first "
                                                  "(one call each); false: no API call, stored snapshots only")


class BanCheckerConfig(_Platform):
    ban_check_days: int = Field(ge=1)
    max_checks_per_run: int = Field(ge=1)


CONFIG_MODELS: dict[str, type[_Config]] = {
    "TRACKED_PLAYER_UPDATER": TrackedPlayerUpdaterConfig,
    "MATCH_FETCHER": MatchFetcherConfig,
    "SMURF_ANALYZER": SmurfAnalyzerConfig,
    "BAN_CHECKER": BanCheckerConfig,
}


def parse_config(job_type: str, data: Any) -> _Config:
    """Validate one job's config_json; the error names every missing or wrong field."""
    model = CONFIG_MODELS.get(job_type)
    if model is None:
        raise ConfigError(f"job_configurations.job_type: unknown job type {job_type!r}")
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"job_configurations[{job_type}].config_json: "
                          f"{field_errors(exc, empty='<config>')}") from None


def load_config(session: Session, job_type: str) -> tuple[JobConfiguration, Any]:
    """The job's row and its validated config."""
    row = session.execute(select(JobConfiguration).where(JobConfiguration.job_type == job_type)).scalar_one_or_none()
    if row is None:
        raise ConfigError(f"job_configurations: no row for job_type {job_type!r}")
    return row, parse_config(job_type, row.config_json)


# The defaults migrations 0004 and 0007 seed (migrations keep their own frozen copy).
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "TRACKED_PLAYER_UPDATER": {"max_new_matches_per_player": 20, "max_tracked_players": 50},
    "MATCH_FETCHER": {"discovered_players_per_run": 10, "matches_per_player_per_run": 20,
                      "target_matches_per_player": 50},
    "SMURF_ANALYZER": {"unanalyzed_players_per_run": 100, "min_matches_required": 10},
    "BAN_CHECKER": {"ban_check_days": 7, "max_checks_per_run": 50},
}

# The seed's default schedule of each job (UTC), by deployment name: the one source that
# `deployments.serve`, prefect.yaml (kept equal by tests/unit/test_deployments.py) and the
# seeded `job_configurations.schedule` rows (migration 0004, a frozen copy) agree with.
DEFAULT_SCHEDULES: dict[str, str] = {
    "tracked-player-updater": "*/2 * * * *",
    "match-fetcher": "*/5 * * * *",
    "smurf-analyzer": "*/10 * * * *",
    "ban-checker": "0 4 * * *",
}
