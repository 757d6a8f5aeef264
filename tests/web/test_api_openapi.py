"""The OpenAPI document is generated from the schemas that validate requests, and covers
every route under /api/v1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.web.openapi import openapi_path


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def test_every_api_route_is_documented(hub: ApiHub) -> None:
    doc = json_of(hub.app.test_client().get("/api/v1/openapi.json"))
    assert doc["openapi"] == "3.1.0"
    routes = set()
    for rule in hub.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                routes.add((openapi_path(rule.rule), method.lower()))
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert len(routes) >= 20
    assert routes == documented
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for ref in _refs(op):
                name = ref.rsplit("/", 1)[1]
                assert name in doc["components"]["schemas"], (path, method, ref)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_validation_and_document_share_the_schema(hub: ApiHub) -> None:
    doc = json_of(hub.app.test_client().get("/api/v1/openapi.json"))
    submit = doc["components"]["schemas"]["JobSubmit"]
    assert set(submit["required"]) == {"design", "quantity", "material"}
    assert submit["properties"]["quantity"]["maximum"] == 10000
    assert submit["additionalProperties"] is False
    rita = hub.client("rita")
    for missing in submit["required"]:
        body = {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA"}
        del body[missing]
        answer = rita.post("/api/v1/jobs", json=body)
        assert answer.status_code == 400
        assert json_of(answer)["message"] == f"{missing} is required"
    answer = rita.post(
        "/api/v1/jobs", json={"design": "cube-xyz-20mm", "quantity": 10001, "material": "PLA"}
    )
    assert "quantity must be 1..10000, got 10001" in json_of(answer)["message"]
    query = doc["paths"]["/api/v1/jobs"]["get"]["parameters"]
    assert {p["name"] for p in query} == {"limit", "offset", "requester"}
    upload = doc["paths"]["/api/v1/designs"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    machine = doc["paths"]["/api/v1/machines/{agent}/{machine}"]
    assert {"get", "put"} <= set(machine)
