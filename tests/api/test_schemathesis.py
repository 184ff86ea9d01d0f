"""schemathesis over the whole OpenAPI document: no request, however odd, gets a 5xx or a
response that breaks the schema the document declares for it.

The app runs in-process (ASGI) on a real SQLite store holding runs of each kind, and every
generated request carries an admin token, so generation reaches the routes' own
validation and logic rather than stopping at 401. Each operation gets
:data:`EXAMPLES` examples (positive and negative data), enough to probe every parameter
and body field while keeping the suite fast. Failures of every operation are collected and
reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import Role
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .conftest import FakeClock

pytestmark = pytest.mark.slow

EXAMPLES = 25

# Golden records are sent as JSON lines (POST /api/v1/golden/...): text, sent as it is.
schemathesis.serializer.alias("application/jsonl", "text/plain")


@pytest.fixture
def api_schema(
    database_url: str,
    store: Store,
    clock: FakeClock,
    client: Client,
    start_run: Callable[..., str],
) -> Any:
    start_run()
    start_run(single=True)
    # Thousands of requests in one (fake) minute: the rate limit would answer most of them
    # 429 (tests/api/test_rate_limit.py covers it); here every request reaches its route.
    settings = Settings(database_url=database_url, api_rate_limit_per_minute=0)
    app = create_app(settings, store=store, clock=clock)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def test_no_request_gets_a_server_error_or_a_response_outside_its_schema(
    api_schema: Any, tokens: dict[Role, str]
) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    problems: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 10  # the whole document, not a part of it

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def probe(case: Any) -> None:
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            probe()
        except Exception as exc:  # collect every operation's failure, then report them all
            problems.append(f"{operation.label}: {exc}")
    assert problems == []
