"""A run's Prefect progress artifact: created on the flow run, updated as its work finishes.

Best effort: the progress bar is for people, so a Prefect API that does not answer is a
warning in the log, never a failed run."""

from __future__ import annotations

import uuid

from prefect import get_run_logger
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact

from core.runs.progress import Progress


async def start_progress(job: str) -> uuid.UUID | None:
    """A progress artifact at 0 % on the current flow run (its Artifacts tab); None if Prefect
    refused it."""
    try:
        return await acreate_progress_artifact(progress=0.0, description=f"{job}: starting")
    except Exception as exc:  # noqa: BLE001 - best effort, see the module
        get_run_logger().warning("progress artifact not created: %s: %s", type(exc).__name__, exc)
        return None


async def report_progress(artifact_id: uuid.UUID | None, job: str, progress: Progress) -> None:
    if artifact_id is None:
        return
    try:
        await aupdate_progress_artifact(artifact_id, progress=progress.percent,
                                        description=f"{job}: {progress.line()}")
    except Exception as exc:  # noqa: BLE001 - best effort, see the module
        get_run_logger().warning("progress artifact not updated: %s: %s", type(exc).__name__, exc)
