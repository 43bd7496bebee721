"""A job's Prefect state says its JobResult status (issue 20 item 1), and the JobResult table
artifact belongs to the flow run itself under the job's key (item 2): checked on a Prefect
server's records, as the UI's run list and Artifacts tab read them."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.sorting import FlowRunSort

from core.errors import JobRunFailed
from flows.profiles import profile_fetcher
from tests.conftest import reload_settings
from tests.factories import seed_entries, urns


async def _state_and_artifacts(flow_run_id: str) -> tuple[object, list[object]]:
    async with get_client() as client:
        run = await client.read_flow_run(uuid.UUID(flow_run_id))
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=["profile-fetcher"])))
    return run.state, [a for a in artifacts if str(a.flow_run_id) == flow_run_id]


async def test_partial_success_and_failed_runs_end_in_states_named_so(app_env, rapidapi_sandbox, monkeypatch):
    url = app_env["DATABASE_URL"]
    missing = "ACoAAGoneForGood"
    seed_entries(url, [*urns(3), missing])
    rapidapi_sandbox.update_knobs(missing_urns=[missing])

    partial = await profile_fetcher(batch_size=2)  # the Python API still returns the JobResult

    assert partial is not None and partial.status == "PARTIAL"
    state, artifacts = await _state_and_artifacts(partial.flow_run_id)
    assert state.type.value == "COMPLETED" and state.name == "Partial"
    assert state.message.startswith("PARTIAL: processed 4") and "failed 1" in state.message
    [artifact] = artifacts
    assert artifact.type == "table" and artifact.task_run_id is None  # on the flow run, not a task run
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert {"metric": "status", "value": "PARTIAL"} in rows
    assert any(row["metric"] == f"error[{missing}]" and "404" in row["value"] for row in rows)

    async with get_client() as client:
        progress = [a for a in await client.read_artifacts(artifact_filter=ArtifactFilter(type={"any_": ["progress"]}))
                    if str(a.flow_run_id) == partial.flow_run_id]
    [bar] = progress  # one progress artifact on the flow run, moved by every stage
    assert bar.data == 100.0 and bar.task_run_id is None
    assert bar.description.startswith("profile_fetcher: 4 of 4 (100%)")

    rapidapi_sandbox.update_knobs(missing_urns=[])
    seed_entries(url, urns(2, prefix="ACoAAOk"))
    success = await profile_fetcher(batch_size=2)
    assert success is not None and success.status == "SUCCESS"
    state, _ = await _state_and_artifacts(success.flow_run_id)
    assert state.type.value == "COMPLETED" and state.name == "Completed"
    assert state.message.startswith("SUCCESS: processed 2")

    seed_entries(url, urns(2, prefix="ACoAANo"))
    monkeypatch.setenv("RAPIDAPI_KEY", "wrong-key")
    reload_settings()
    with pytest.raises(JobRunFailed):
        await profile_fetcher(batch_size=2)
    async with get_client() as client:
        [failed] = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["profile-fetcher"])),
                                               sort=FlowRunSort.START_TIME_DESC, limit=1)
    assert failed.state.type.value == "FAILED" and "HTTP 401" in (failed.state.message or "")
    assert "wrong-key" not in failed.state.message
