"""The seed-003 admin API over the brand scheduling operations (``deployments.brand_admin``).

    uv run uvicorn deployments.admin_api:app --port 8090     # BRAND_ADMIN_TOKEN must be set

Every route needs ``Authorization: Bearer <brandJobs.adminToken>``. Bad input is a 422 whose
``detail`` starts with the field's name; an unknown id is a 404. The Prefect UI shows the
same schedules (deployment ``brand-job/brand-job``) and every run.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from core.brands.schemas import UnknownIdError
from core.errors import ConfigError
from core.settings import get_settings
from deployments import brand_admin

JobTypeName = Literal["data_collection", "scoring", "data_collection_and_scoring"]
_bearer = HTTPBearer(auto_error=False)


def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected = get_settings().brand_jobs.admin_token.get_secret_value()
    given = credentials.credentials if credentials else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})


class ScheduledJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brand_id: str
    customer_id: str
    job_type: JobTypeName
    cron_expression: str = Field(examples=["0 9 * * *"])
    timezone: str = "UTC"
    is_active: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[
        {"collectors": ["chatgpt", "google_aio", "perplexity"], "parallel": False,
         "positionLimit": 50, "sentimentLimit": 50}])


class ScheduledJobUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_type: JobTypeName | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    is_active: bool | None = None
    metadata: dict[str, Any] | None = None


def create_app() -> FastAPI:
    app = FastAPI(title="jobpipes brand jobs admin", version="1.0",
                  dependencies=[Depends(require_token)])

    @app.exception_handler(ConfigError)
    async def _bad_input(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UnknownIdError)
    async def _missing(_: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    api = "/api/admin"

    @app.get(f"{api}/scheduled-jobs")
    async def list_jobs(customer_id: str | None = None, brand_id: str | None = None) -> list[dict[str, Any]]:
        return await brand_admin.list_scheduled_jobs(customer_id=customer_id, brand_id=brand_id)

    @app.get(f"{api}/scheduled-jobs/{{job_id}}")
    async def get_job(job_id: str) -> dict[str, Any]:
        return await brand_admin.get_scheduled_job(job_id)

    @app.post(f"{api}/scheduled-jobs", status_code=201)
    async def create_job(body: ScheduledJobCreate) -> dict[str, Any]:
        return await brand_admin.create_scheduled_job(**body.model_dump())

    @app.put(f"{api}/scheduled-jobs/{{job_id}}")
    async def update_job(job_id: str, body: ScheduledJobUpdate) -> dict[str, Any]:
        return await brand_admin.update_scheduled_job(job_id, **body.model_dump(exclude_unset=True))

    @app.delete(f"{api}/scheduled-jobs/{{job_id}}", status_code=204)
    async def delete_job(job_id: str) -> None:
        await brand_admin.delete_scheduled_job(job_id)

    @app.post(f"{api}/scheduled-jobs/{{job_id}}/trigger", status_code=202)
    async def trigger_job(job_id: str) -> dict[str, Any]:
        return await brand_admin.trigger_scheduled_job(job_id)

    @app.get(f"{api}/job-runs")
    async def job_runs(customer_id: str | None = None, brand_id: str | None = None, status: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        return await brand_admin.list_job_runs(customer_id=customer_id, brand_id=brand_id, status=status,
                                               limit=limit)

    @app.get(f"{api}/job-runs/{{run_id}}")
    async def job_run(run_id: str) -> dict[str, Any]:
        return await brand_admin.get_job_run(run_id)

    @app.get(f"{api}/brands/{{brand_id}}/topics-queries")
    async def topics_queries(brand_id: str) -> dict[str, Any]:
        return await brand_admin.brand_topics_queries(brand_id)

    return app


app = create_app()
