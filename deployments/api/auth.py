"""One bearer token for every API route (``brandJobs.adminToken``, env ``BRAND_ADMIN_TOKEN``),
and the mapping of domain errors to HTTP answers."""

from __future__ import annotations

import hmac
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.brands.schemas import UnknownIdError
from core.errors import ConfigError
from core.settings import get_settings
from deployments.control.catalog import UnknownJob
from deployments.control.trigger import JobConflict

_bearer = HTTPBearer(auto_error=False)


def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected = get_settings().brand_jobs.admin_token.get_secret_value()
    given = credentials.credentials if credentials else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})


def add_error_handlers(app: FastAPI) -> None:
    """ConfigError -> 422, unknown ids -> 404, JobConflict -> 409; ``detail`` names the field."""

    @app.exception_handler(ConfigError)
    async def _bad_input(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UnknownIdError)
    async def _missing(_: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(UnknownJob)
    async def _no_job(_: Request, exc: UnknownJob) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(JobConflict)
    async def _conflict(_: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(httpx.TransportError)
    async def _prefect_down(_: Request, exc: httpx.TransportError) -> JSONResponse:
        # The Prefect API (PREFECT_API_URL) could not be reached: not this request's fault.
        return JSONResponse({"detail": f"Prefect API unreachable: {type(exc).__name__}"}, status_code=503)
