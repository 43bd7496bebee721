"""The operations API: one FastAPI app for every job (issue 11), with the seed-003 brand admin
routes (brands: ``deployments.control.brands``, their scheduled jobs and runs:
``deployments.control.brand_admin``) and the operator page.

    BRAND_ADMIN_TOKEN=... uv run uvicorn deployments.api.app:app --port 8090
    # page: http://127.0.0.1:8090/admin   API docs: http://127.0.0.1:8090/docs

Every API route needs ``Authorization: Bearer <brandJobs.adminToken>`` (401 otherwise). Bad
input is a 422 whose ``detail`` starts with the field's name; an unknown id is a 404; a job
that cannot start now is a 409. The page and its scripts are static files without data:
they ask for the token and send it with every API call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from deployments.api import (
    routes_alerts,
    routes_crypto,
    routes_jobs,
    routes_queue,
    routes_riot,
    routes_trends,
)
from deployments.api.auth import add_error_handlers, require_token
from deployments.api.guard import BodyGuard, malformed_json_handler
from deployments.control import brand_admin, brands

JobTypeName = Literal["data_collection", "scoring", "data_collection_and_scoring"]
WEB = Path(__file__).resolve().parent / "web"
__all__ = ["app", "create_app", "require_token"]


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


class TopicCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["crm software"])
    queries: list[str] = Field(default_factory=list, examples=[["best CRM for a small business"]])


class BrandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str
    name: str = Field(examples=["Acme CRM"])
    competitors: list[str] = Field(default_factory=list, examples=[["Globex", "Initech"]])
    topics: list[TopicCreate] = Field(default_factory=list, description="each topic with its generated queries")


def create_app(*, run_wait_seconds: float = 300) -> FastAPI:
    """The app; ``run_wait_seconds`` bounds how long the seed-004 routes wait for a run."""
    app = FastAPI(title="jobpipes operations", version="2.0", docs_url=None, redoc_url=None,
                  description="Every job of the five families: status, executions, trigger, configuration "
                              "(the config tables are the source of each schedule), seed-004 commands, "
                              "brand scheduled jobs (seed 003), trends. Bearer token on every route.")
    app.state.run_wait_seconds = run_wait_seconds
    add_error_handlers(app)
    # The token and the body's size are checked before any route reads the body (guard.py).
    app.add_middleware(BodyGuard)
    app.add_exception_handler(RequestValidationError, malformed_json_handler)
    secured = [Depends(require_token)]
    for module in (routes_jobs, routes_crypto, routes_riot, routes_trends, routes_alerts, routes_queue):
        app.include_router(module.router, dependencies=secured)
    app.include_router(_brand_router(), dependencies=secured)
    _add_page(app)
    return app


def _add_page(app: FastAPI) -> None:
    """The operator page and the API docs, both from files served here (no CDN: offline)."""
    app.mount("/admin/static", StaticFiles(directory=WEB), name="static")
    swagger = "/admin/static/vendor/swagger-ui"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - API docs",
                                   swagger_js_url=f"{swagger}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{swagger}/swagger-ui.css",
                                   swagger_favicon_url=f"{swagger}/favicon-32x32.png")

    @app.get("/admin", include_in_schema=False)
    @app.get("/admin/scheduled-jobs", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB / "index.html")


def _brand_router() -> APIRouter:
    router = APIRouter(tags=["brand scheduled jobs (seed 003)"])
    api = "/api/admin"

    @router.get(f"{api}/scheduled-jobs")
    async def list_jobs(customer_id: str | None = None, brand_id: str | None = None) -> list[dict[str, Any]]:
        return await brand_admin.list_scheduled_jobs(customer_id=customer_id, brand_id=brand_id)

    @router.get(f"{api}/scheduled-jobs/{{job_id}}")
    async def get_job(job_id: str) -> dict[str, Any]:
        return await brand_admin.get_scheduled_job(job_id)

    @router.post(f"{api}/scheduled-jobs", status_code=201)
    async def create_job(body: ScheduledJobCreate) -> dict[str, Any]:
        return await brand_admin.create_scheduled_job(**body.model_dump())

    @router.put(f"{api}/scheduled-jobs/{{job_id}}")
    async def update_job(job_id: str, body: ScheduledJobUpdate) -> dict[str, Any]:
        return await brand_admin.update_scheduled_job(job_id, **body.model_dump(exclude_unset=True))

    @router.delete(f"{api}/scheduled-jobs/{{job_id}}", status_code=204)
    async def delete_job(job_id: str) -> None:
        await brand_admin.delete_scheduled_job(job_id)

    @router.post(f"{api}/scheduled-jobs/{{job_id}}/trigger", status_code=202)
    async def trigger_job(job_id: str) -> dict[str, Any]:
        return await brand_admin.trigger_scheduled_job(job_id)

    @router.get(f"{api}/job-runs", summary="Job runs, newest first: `limit` from `offset`; "
                                            "the header X-Total-Count gives how many match")
    async def job_runs(response: Response, customer_id: str | None = None, brand_id: str | None = None,
                       status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[dict[str, Any]]:
        page = await brand_admin.page_job_runs(customer_id=customer_id, brand_id=brand_id, status=status,
                                               limit=limit, offset=offset)
        response.headers["X-Total-Count"] = str(page["total"])
        return list(page["items"])

    @router.get(f"{api}/job-runs/{{run_id}}")
    async def job_run(run_id: str) -> dict[str, Any]:
        return await brand_admin.get_job_run(run_id)

    @router.post(f"{api}/brands", status_code=201, summary="Create a brand with its topics, queries and competitors")
    async def create_brand(body: BrandCreate) -> dict[str, Any]:
        return await brands.create_brand(customer_id=body.customer_id, name=body.name, competitors=body.competitors,
                                         topics=[(t.name, t.queries) for t in body.topics])

    @router.get(f"{api}/brands", summary="Every brand: topic and query counts, competitors, scheduled jobs")
    async def list_brands(customer_id: str | None = None) -> list[dict[str, Any]]:
        return await brands.list_brands(customer_id)

    @router.get(f"{api}/brands/{{brand_id}}", summary="One brand: topics with their queries, scheduled jobs")
    async def get_brand(brand_id: str) -> dict[str, Any]:
        return await brands.get_brand(brand_id)

    @router.get(f"{api}/brands/{{brand_id}}/topics-queries")
    async def topics_queries(brand_id: str) -> dict[str, Any]:
        return await brand_admin.brand_topics_queries(brand_id)

    return router


app = create_app()
