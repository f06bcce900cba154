"""Property-based run of schemathesis against the service's own OpenAPI document:
no 5xx for any generated request, and every answer matches its documented schema, for
every route as the admin key, as the read key and with no key at all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import ignored_auth, positive_data_acceptance

from tests.support.server import start_server

# The events stream and result waits answer after up to a minute (or never, for a stream).
LONG_LIVED = ("/events", "/result")
# Requests hit a live server: no deadline, no example database, no health-check noise.
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


ADMIN_KEY = "fuzz-admin-key-0123456789abcdef0123"
READ_KEY = "fuzz-read-key-0123456789abcdef01234"
# Who calls, and how many examples per operation: the admin reaches the handlers; the
# others are mostly turned away early, so fewer examples cover them.
ROLES = {
    "admin": ({"X-API-Key": ADMIN_KEY}, 25),
    "read": ({"Authorization": f"Bearer {READ_KEY}"}, 6),
    "anonymous": ({}, 4),
}


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, server_env):
    # A server of its own: fuzzed pauses and cleans must not disturb the other tests.
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkz-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN_KEY]),
        "KK_READ_API_KEYS": json.dumps([READ_KEY]),
    }
    with start_server(tmp_path_factory.mktemp("fuzz"), env) as srv:
        yield srv


def per_operation(
    base_url: str, max_examples: int, check: Callable[[schemathesis.Case], None], *, bodies: bool
) -> tuple[int, list[str]]:
    """Run `check` on generated cases of every operation (only those taking a body, if
    `bodies`); every operation's failure is collected, then all are reported."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if bodies and "requestBody" not in operation.definition.raw:
            continue
        if operation.path.endswith(LONG_LIVED):
            continue  # they hold the request open by design: tests/integration/test_job_results.py
        operations += 1

        @given(case=operation.as_strategy())
        @settings(FUZZ, max_examples=max_examples)
        def run(case: schemathesis.Case) -> None:
            check(case)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    return operations, failures


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_server_errors_and_answers_match_the_schema(fuzz_target, role):
    headers, examples = ROLES[role]

    def check(case: schemathesis.Case) -> None:
        # Our validation is deliberately stricter than JSON Schema can say (deliverable
        # addresses, existing templates, job ids BullMQ accepts), so "schema-valid but
        # rejected" is not a failure; a 5xx or an undocumented answer is.
        # `ignored_auth` replays the request with made-up credentials, but ours, valid,
        # stay in it: it only makes sense for the run without a key.
        excluded = [positive_data_acceptance] + ([ignored_auth] if headers else [])
        response = case.call_and_validate(headers=headers, excluded_checks=excluded)
        assert response.status_code < 500, f"{role}: {response.status_code} {response.text[:300]}"

    operations, failures = per_operation(fuzz_target.url, examples, check, bodies=False)
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
    def check(case: schemathesis.Case) -> None:
        if not isinstance(case.body, dict | list):
            return
        kwargs = case.as_transport_kwargs(base_url=fuzz_target.url)
        for kind in ("nan", "surrogate"):
            text = json.dumps(_poison(case.body, kind))  # escapes the surrogate as \ud800
            response = httpx.request(
                kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                headers={"content-type": "application/json", "X-API-Key": ADMIN_KEY},
                content=text, timeout=30,
            )  # fmt: skip
            assert response.status_code < 500, (
                f"{kind}: {response.status_code} {response.text[:300]} for {text[:300]}"
            )

    operations, failures = per_operation(fuzz_target.url, 8, check, bodies=True)
    assert operations >= 6  # every route that takes a JSON body
    assert not failures, "\n\n".join(failures)
