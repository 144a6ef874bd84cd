"""The OpenAPI document is the truth: schemathesis fuzzes every operation it lists against a
real `loopllama serve` and checks each answer against the document.

Every operation of `/openapi.json` is covered (routes added later are fuzzed without touching
this file), with valid and invalid inputs, on SQLite and PostgreSQL. Derandomized, so a run
is repeatable; bounded (MAX_EXAMPLES per operation and mode) to stay within CI's budget.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from tests.helpers import LiveServer

with warnings.catch_warnings():  # its dependencies may warn at import; not our concern here
    warnings.simplefilter("ignore")
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 30


def negative_data_rejection_or_too_large(ctx, response, case):
    """Invalid input must be refused; 413 (body) and 431 (headers) refuse it too, before it is
    read: a huge generated request may be answered with either."""
    if response.status_code in (413, 431):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection_or_too_large,
]


@pytest.fixture
def served(tmp_path, database_url, provider_server) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, provider_server, LOOPLLAMA_DATABASE_URL=database_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_every_operation_answers_as_documented(served: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    auth = {"Authorization": f"Bearer {served.api_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, served.url, auth)


def _fuzz(operation, mode, base_url: str, auth: dict[str, str]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:
        case.call_and_validate(base_url=base_url, headers=auth, checks=CHECKS, timeout=30)

    try:
        check()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): only the positive run applies.
        assert mode is GenerationMode.NEGATIVE, operation.label
