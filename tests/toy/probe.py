"""Run in a fresh process with JOBPIPES_JOB_MODULES=tests.toy.toy_job: what every reader of the
registry makes of the toy job, as JSON on stdout."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx


def offline() -> dict[str, object]:
    from core.settings import get_settings
    from deployments.control import registry
    from deployments.serve import build_deployments

    return {"registry": "toy-job" in registry.BY_ID, "families": list(registry.FAMILIES),
            "serve": [d.name for d in build_deployments(get_settings())],
            "prefect_yaml": registry.prefect_yaml(registry.PREFECT_YAML.read_text())}


async def main() -> dict[str, object]:
    from core.settings import get_settings
    from deployments.api.app import create_app
    from deployments.control.sync import apply_all

    token = get_settings().brand_jobs.admin_token.get_secret_value()
    out: dict[str, object] = {
        "deploy": [line for line in await apply_all(register_missing=True) if line.startswith("toy-job")]}
    transport = httpx.ASGITransport(app=create_app(run_wait_seconds=5))
    async with httpx.AsyncClient(transport=transport, base_url="http://ops",
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        out["jobs"] = (await api.get("/api/v1/jobs", params={"family": "toys"})).json()
        out["config"] = (await api.get("/api/v1/jobs/toy-job/config")).json()
        out["bad_config"] = (await api.put("/api/v1/jobs/toy-job/config", json={"config": {"greting": "x"}})).json()
        out["put"] = (await api.put("/api/v1/jobs/toy-job/config",
                                    json={"schedule": "5 * * * *", "config": {"greeting": "hi"}})).json()
        overview = (await api.get("/api/v1/jobs/status/overview", params={"family": "toys"})).json()
        out["overview"] = overview["jobs"]
        out["trigger"] = (await api.post("/api/v1/jobs/toy-job/trigger", json={"parameters": {"greeting": "yo"}})).json()
    return out


if __name__ == "__main__":
    json.dump(offline() | asyncio.run(main()), sys.stdout, default=str)
