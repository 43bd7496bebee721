"""The e2e tests' server health check finds every ERROR of a Prefect server's log, with its service."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import assert_server_healthy, server_log_errors

LOG = """\
01:26:10.001 | INFO    | prefect.server.services.scheduler - Scheduled 3 runs.
01:26:13.972 | ERROR   | docket.dependencies - schedule_recent_deployments(){schedule_recent_deployments}
Traceback (most recent call last):
  File "/x/prefect/server/services/scheduler.py", line 348, in schedule_recent_deployments
sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement; please supply a bulk_dml decorated function
01:26:14.000 | WARNING | prefect.server.events.actions - Action failed: 'Run is already in terminal state'
ERROR:    Exception in ASGI application
01:27:00.000 | CRITICAL | prefect.server.services.foreman - gave up
"""


def test_errors_are_found_with_their_service_and_exception(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG)
    errors = server_log_errors(log)
    assert len(errors) == 3, errors
    assert errors[0].startswith("[docket.dependencies]") and "schedule_recent_deployments" in errors[0]
    assert errors[0].endswith("sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement; "
                              "please supply a bulk_dml decorated function")
    assert errors[1].startswith("[uvicorn]") and errors[2].startswith("[prefect.server.services.foreman]")
    assert server_log_errors(log, offset=LOG.index("01:26:14")) == errors[1:]  # only what came after
    with pytest.raises(AssertionError, match="logged 3 error"):
        assert_server_healthy(log)


def test_a_clean_log_passes(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG.splitlines()[0] + "\n" + LOG.splitlines()[5] + "\n")
    assert_server_healthy(log)
    assert_server_healthy(tmp_path / "missing.log")
