"""Property-based run of schemathesis against the service's own OpenAPI document:
no 5xx for any generated request, and every answer matches its documented schema."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.support.server import start_server


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, server_env):
    # A server of its own: fuzzed pauses and cleans must not disturb the other tests.
    env = {**server_env, "KK_QUEUE_PREFIX": f"kkz-{uuid.uuid4().hex[:8]}"}
    with start_server(tmp_path_factory.mktemp("fuzz"), env) as srv:
        yield srv


def test_no_server_errors_and_answers_match_the_schema(fuzz_target):
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # Our validation is deliberately stricter than JSON Schema can say (deliverable
            # addresses, existing templates, job ids BullMQ accepts), so "schema-valid but
            # rejected" is not a failure; a 5xx or an undocumented answer is.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)


def _poison(value: Any, kind: str) -> Any:
    """The same body with every number made NaN, or a lone surrogate on every string:
    JSON text Python's parser accepts, though JSON (NaN) or Unicode (surrogates) do not."""
    if isinstance(value, dict):
        return {k: _poison(v, kind) for k, v in value.items()}
    if isinstance(value, list):
        return [_poison(v, kind) for v in value]
    if kind == "nan" and isinstance(value, int | float) and not isinstance(value, bool):
        return float("nan")
    if kind == "surrogate" and isinstance(value, str):
        return value + "\ud800"
    return value


def test_json_text_that_json_or_unicode_refuse_never_causes_a_5xx(fuzz_target):
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json")
    failures: list[str] = []
    bodies = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "requestBody" not in operation.definition.raw:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case: schemathesis.Case) -> None:
            nonlocal bodies
            if not isinstance(case.body, dict | list):
                return
            bodies += 1
            kwargs = case.as_transport_kwargs(base_url=fuzz_target.url)
            for kind in ("nan", "surrogate"):
                text = json.dumps(_poison(case.body, kind))  # escapes the surrogate as \ud800
                response = httpx.request(
                    kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                    headers={"content-type": "application/json"}, content=text, timeout=30,
                )  # fmt: skip
                if response.status_code >= 500:
                    failures.append(f"{case.operation.label} ({kind}): {response.status_code} "
                                    f"{response.text[:300]} for {text[:300]}")  # fmt: skip

        check()
    assert bodies >= 10
    assert not failures, "\n\n".join(failures)
