"""Schemathesis against the live server's own OpenAPI document: generated requests (valid and
invalid) to every operation find no 5xx, and every response matches the document (status,
content type, headers, body). Bounded: a few examples per operation, derandomised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from http_server import ApiUnderTest, api_fixture, live_server_fixture  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opcatflow.adapters.http import ApiKeys

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 12


def run(operation: Any, mode: GenerationMode, api: ApiUnderTest, **fixed: Any) -> list[str]:
    """Failures (as text) of a bounded run over one operation."""
    failures: list[str] = []
    path_parameters = {k: v for k, v in fixed.items() if f"{{{k}}}" in operation.path}
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        headers = {**(case.headers or {}), **api.auth("all")}
        response = case.call(base_url=api.url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except AssertionError as err:
            failures.append(f"{operation.label} [{mode.value}]: {err}")

    try:
        check()
    except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE
    return failures


def test_no_server_errors_and_no_schema_violations(api: ApiUnderTest) -> None:
    _, api.tokens["all"] = ApiKeys(api.engine.store, api.clock).create(
        "fuzzer", ["clerk", "reviewer", "observer", "warden", "admin"]
    )
    case = api.start(name="Ana", score=6)
    api.fire(case["id"], "edit", "reviewer", body={"data": {"health": "asthma"}})
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    fixed = {"instance_id": case["id"], "workflow_id": "casefile", "deadline": "review_by"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 26  # every route but /docs and /openapi.json
    runs: list[Callable[[], list[str]]] = []
    for operation in operations:
        runs.append(lambda op=operation: run(op, GenerationMode.POSITIVE, api))
        runs.append(lambda op=operation: run(op, GenerationMode.NEGATIVE, api))
        if "{" in operation.path:
            runs.append(lambda op=operation: run(op, GenerationMode.POSITIVE, api, **fixed))
    for one in runs:
        failures += one()
    assert failures == []
