"""Property-based requests on the admin API's OpenAPI (schemathesis): whatever a client
sends, the answer is never a server error. Runs against PostgreSQL and the Prefect test API."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from deployments.admin_api import create_app
from tests.integration.test_brand_admin_api import TOKEN

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_admin_api_fail_with_a_server_error(case, brand_env):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
