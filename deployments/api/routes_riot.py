"""``POST /api/v1/riot/tracked-players``: track a player by Riot ID through the flow
``flows.riot.add_tracked_player(riot_id, platform)`` (a flow run, in this process).

201 with the player (``created`` false when it was tracked already); 422 naming ``riot_id`` or
``platform`` for bad input (checked before any call); 404 when Riot knows no such account;
429 when Riot rate-limits (``Retry-After`` passed on); 502 when Riot fails otherwise.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError, NotFoundError, ProviderError, RateLimitedError
from core.riot.players import parse_platform, parse_riot_id
from flows.riot import add_tracked_player

router = APIRouter(prefix="/api/v1/riot", tags=["riot (seed 001)"])


class TrackedPlayer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    riot_id: str = Field(max_length=60, examples=["Faker#KR1"], description="gameName#tagLine")
    platform: str = Field(max_length=8, examples=["na1"], description="platform routing value")


@router.post("/tracked-players", status_code=201, summary="Track a player by Riot ID (gameName#tagLine) on a platform")
async def add_player(body: TrackedPlayer) -> Any:
    try:
        parse_riot_id(body.riot_id)
        parse_platform(body.platform)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return await add_tracked_player(riot_id=body.riot_id, platform=body.platform)
    except NotFoundError as exc:
        detail = str(exc) if str(exc).startswith("riot_id") else f"riot_id: {exc}"
        return JSONResponse({"detail": detail}, status_code=404)
    except RateLimitedError as exc:
        retry = getattr(exc, "retry_after", None)
        return JSONResponse({"detail": f"Riot rate limit: {exc}"}, status_code=429,
                            headers={"Retry-After": str(int(retry))} if retry else None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except ProviderError as exc:
        return JSONResponse({"detail": f"Riot API: {exc}"}, status_code=502)
