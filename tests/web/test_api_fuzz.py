"""Fuzz every route of the OpenAPI document, as each role: hypothesis draws path arguments,
query values and JSON bodies (the declared fields with values of any JSON type, plus extra
keys) and every answer must be a considered one — any status but a 5xx (the test app
propagates an unhandled exception, so it fails the test too).

The routes come from the hub's own ``/api/v1/openapi.json``, so a new route is fuzzed without
touching this file. Examples per route are few (the suite's time is shared) but drawn afresh
each run; a failure prints the request that caused it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiHub, api_hub
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROLES = ("olga", "rita", "ada")  # operator, requester, maker (and requester)
EXAMPLES_PER_ROUTE = 25
SKIPPED_METHODS = {"head", "options"}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
query_values = (
    st.integers(-(2**70), 2**70).map(str)
    | st.text(max_size=60)
    | st.sampled_from(["", "0", "-1", "true", "null", "1e999", "NaN", "x" * 3000])
    | st.sampled_from([str(2**31), str(2**63), str(2**64), str(-(2**63) - 1), str(10**30)])
)
path_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"),
    min_size=1,
    max_size=300,
) | st.sampled_from(["cube-xyz-20mm", "0" * 32, "ada", "ada/mk3s-1", "..", "%00"])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHub]:
    with api_hub(tmp_path_factory.mktemp("fuzz")) as h:
        yield h


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method not in SKIPPED_METHODS
    ]


def _body_fields(op: dict[str, Any], document: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One case per route and role, read from a throw-away hub's OpenAPI document."""
    if "operation" in metafunc.fixturenames:
        with tempfile.TemporaryDirectory() as folder:
            with api_hub(Path(folder)) as h:
                answer = h.app.test_client().get("/api/v1/openapi.json")
                document = json.loads(answer.get_data(as_text=True))
        cases = [
            pytest.param((m, p, op, _body_fields(op, document)), role, id=f"{role}-{m}-{p}")
            for m, p, op in _operations(document)
            for role in ROLES
        ]
        metafunc.parametrize(("operation", "role"), cases)


@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
def test_no_route_answers_5xx(
    hub: ApiHub, operation: tuple[str, str, dict[str, Any], list[str]], role: str, data: Any
) -> None:
    method, path, op, body_fields = operation
    url = path
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", data.draw(path_values), 1)
    query = {
        p["name"]: data.draw(query_values)
        for p in op.get("parameters", [])
        if p["in"] == "query" and data.draw(st.booleans())
    }
    kwargs: dict[str, Any] = {"query_string": query}
    if "requestBody" in op and "application/json" in op["requestBody"].get("content", {}):
        keys = st.sampled_from(body_fields) if body_fields else st.text(max_size=10)
        body = data.draw(st.dictionaries(keys | st.text(max_size=10), json_values, max_size=8))
        kwargs["json"] = body
    client = hub.client(role)
    answer = client.open(url, method=method.upper(), **kwargs)
    assert answer.status_code < 500, (
        f"{method.upper()} {url} {kwargs} as {role}: {answer.status_code} "
        f"{answer.get_data(as_text=True)[:300]}"
    )
