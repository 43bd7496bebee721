"""``POST /api/v1/riot/tracked-players``: track a player by Riot ID, through the flow
``flows.riot.add_tracked_player(riot_id, platform)`` when this checkout has it (the route is
absent otherwise: ``router`` is None)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from flows import riot as riot_flows

router: APIRouter | None = None
_add: Any = getattr(riot_flows, "add_tracked_player", None)


class TrackedPlayer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    riot_id: str = Field(min_length=3, max_length=60, examples=["Faker#KR1"])
    platform: str = Field(min_length=2, max_length=8, examples=["na1"])


if _add is not None:
    router = APIRouter(prefix="/api/v1/riot", tags=["riot (seed 001)"])

    @router.post("/tracked-players", status_code=201, summary="Track a player by Riot ID (name#tag) on a platform")
    async def add_tracked_player(body: TrackedPlayer) -> Any:
        try:
            result = await _add(riot_id=body.riot_id, platform=body.platform)
        except ValueError as exc:  # the flow's validation: the message names the field
            raise ConfigError(str(exc)) from None
        return result.model_dump(mode="json") if hasattr(result, "model_dump") else result
