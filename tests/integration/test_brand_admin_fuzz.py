"""Property-based requests on the whole operations API's OpenAPI (schemathesis): the brand
admin routes, the jobs routes of every family, the seed-004 commands and the trends. Whatever
a client sends, the answer is never a server error. Runs against PostgreSQL and the Prefect
test API (no runner: the seed-004 routes do not wait, they answer 202)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from deployments.api.app import create_app
from tests.integration.test_brand_admin_api import TOKEN
from tests.integration.test_ops_api import riot_env  # noqa: F401  (fixture)

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(run_wait_seconds=0))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.usefixtures("riot_env")
def test_no_request_makes_the_admin_api_fail_with_a_server_error(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
