"""The job-result framework (seed 004's JobRunner): metrics and the result every job reports."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.runs.history import RunRecord
from core.runs.models import RunStatus


class JobMetrics(BaseModel):
    """Standard counters of a job, plus free job-specific ``custom`` metrics."""

    items_processed: int = 0
    items_created: int = 0
    items_updated: int = 0
    items_skipped: int = 0
    custom: dict[str, Any] = Field(default_factory=dict)


class JobResult(BaseModel):
    """What a finished job run returns, logs, records and shows as an artifact."""

    success: bool
    job_name: str
    status: str
    duration_ms: int
    started_at: datetime
    completed_at: datetime
    metrics: JobMetrics
    error: str | None = None
    flow_run_id: str | None = None

    def summary(self) -> str:
        """One line for a Prefect state's message and the run list: the counts, then the error."""
        m = self.metrics
        parts = [f"processed {m.items_processed}", f"created {m.items_created}", f"updated {m.items_updated}"]
        if m.items_skipped:
            parts.append(f"skipped {m.items_skipped}")
        if failed := m.custom.get("failed"):
            parts.append(f"failed {failed}")
        line = f"{self.status}: " + ", ".join(parts)
        if self.error:
            first = self.error.strip().splitlines()[0] if self.error.strip() else ""
            line += f"; {first[:300]}"
        return line

    @classmethod
    def from_record(cls, record: RunRecord) -> JobResult:
        custom = {k: v for k, v in record.metrics.items() if k != "errors"}
        if record.api_calls_made and "api_calls" not in custom:
            custom["api_calls_made"] = record.api_calls_made
        if record.quota_remaining is not None:
            custom["quota_remaining"] = record.quota_remaining
        if record.failed_count:
            custom["failed"] = record.failed_count
        return cls(
            success=record.status != RunStatus.FAILED,
            job_name=record.job_name,
            status=record.status,
            duration_ms=record.duration_ms,
            started_at=record.started_at,
            completed_at=record.finished_at,
            metrics=JobMetrics(
                items_processed=record.total_processed,
                items_created=record.items_created,
                items_updated=record.items_updated,
                items_skipped=record.items_skipped,
                custom=custom,
            ),
            error=record.error_summary,
            flow_run_id=record.flow_run_id,
        )

    def log_line(self) -> str:
        """One structured line (JSON) for log search."""
        return json.dumps({"event": "job_completed", **self.model_dump(mode="json")}, sort_keys=True)

    def table(self) -> list[dict[str, Any]]:
        """Rows for a Prefect table artifact."""
        m = self.metrics
        rows: list[dict[str, Any]] = [
            {"metric": "status", "value": self.status},
            {"metric": "success", "value": self.success},
            {"metric": "duration_ms", "value": self.duration_ms},
            {"metric": "items_processed", "value": m.items_processed},
            {"metric": "items_created", "value": m.items_created},
            {"metric": "items_updated", "value": m.items_updated},
            {"metric": "items_skipped", "value": m.items_skipped},
        ]
        rows += [{"metric": k, "value": json.dumps(v) if isinstance(v, dict | list) else v}
                 for k, v in sorted(m.custom.items())]
        if self.error:
            rows.append({"metric": "error", "value": self.error})
        return rows
