"""A property-based run over the OpenAPI document (schemathesis), in process against the real
PostgreSQL: no input makes the API answer 5xx or break its own document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.test_api import api_database_url, make_world

pytestmark = pytest.mark.integration
__all__ = ["api_database_url"]  # the fixture, shared with the other API tests

EXAMPLES = 30  # per operation: enough to hit every refusal path, well under a minute


def test_no_input_breaks_the_api(api_database_url: str) -> None:
    world = make_world(api_database_url)
    # The admin sees and may do the most: the widest surface for the fuzzer.
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app)
    # A NUL in text is refused with a 422 that the document cannot state (PostgreSQL holds
    # no NUL): tests/unit/api/test_pure.py checks that refusal; here it is not generated.
    schema.config.generation.update(allow_x00=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(headers=headers)

        call()
