"""Schemathesis over the service's OpenAPI spec, on a real server holding a complete world (models
promoted, reports and dashboards built): whatever the spec allows a client to send, the service
answers without a server error."""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from sales_analytics.profiles import initialized
from sales_analytics.service.app import API_KEY_HEADER, create_app
from sales_analytics_tests.helpers import serving

pytestmark = pytest.mark.security
KEY = "schemathesis-key-0123456789"


@pytest.fixture(scope="module")
def api_schema(dashboard_world: dict[str, Any]) -> Iterator[Any]:
    env = dashboard_world["env"]
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as db,
          initialized(env["serving_store"]) as serving_store,
          # a budget no generated burst exhausts: this run looks for server errors, not 429s
          serving(create_app(lake, [KEY], report_db=db, serving_store=serving_store, rate_per_key=10_000)) as url):
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_request_the_spec_allows_gets_a_server_error(api_schema: Any) -> None:
    # One hypothesis run per operation (schemathesis' own pytest plugin does not load under pytest 9).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    answered: dict[str, Counter] = {}
    for operation in operations:
        statuses = answered.setdefault(operation.label, Counter())

        @given(operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def calls(case: Any) -> None:
            response = case.call_and_validate(headers={API_KEY_HEADER: KEY}, checks=[not_a_server_error])
            statuses[response.status_code] += 1  # noqa: B023 — each run of calls() belongs to its own operation

        calls()
    print({label: dict(statuses) for label, statuses in answered.items()})
    assert sum(s[200] for s in answered.values()) > 100  # the key worked: most of the API answered, not just 401s
