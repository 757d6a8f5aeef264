"""Every parameter is bounded from the same schema the OpenAPI document shows: a huge offset or
a path argument thousands of characters long is a 400 naming it, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.web.api.context import MAX_OFFSET
from fabnet.web.openapi import MAX_PATH_ARG_CHARS


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


@pytest.mark.parametrize("path", ["/jobs", "/designs", "/machines", "/makers"])
def test_an_offset_past_the_bound_is_refused(hub: ApiHub, path: str) -> None:
    client = hub.client("olga")  # an operator may list them all
    for offset in (MAX_OFFSET + 1, 10**30):
        answer = client.get(f"/api/v1{path}?offset={offset}")
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert "offset" in json_of(answer)["message"]
    assert client.get(f"/api/v1{path}?offset={MAX_OFFSET}").status_code == 200


@pytest.mark.parametrize("path", ["/designs/{}", "/jobs/{}", "/tasks/{}"])
def test_a_path_argument_past_the_bound_is_refused(hub: ApiHub, path: str) -> None:
    answer = hub.client("rita").get("/api/v1" + path.format("x" * 5000))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert f"at most {MAX_PATH_ARG_CHARS} characters, got 5000" in json_of(answer)["message"]


def test_the_bounds_are_in_the_openapi_document(hub: ApiHub) -> None:
    doc = json_of(hub.client("rita").get("/api/v1/openapi.json"))
    params = [p for op in doc["paths"]["/api/v1/jobs"].values() for p in op.get("parameters", [])]
    offset = next(p for p in params if p["name"] == "offset")
    assert offset["schema"]["maximum"] == MAX_OFFSET
    in_path = [
        p
        for ops in doc["paths"].values()
        for op in ops.values()
        for p in op.get("parameters", [])
        if p["in"] == "path"
    ]
    assert in_path and all(p["schema"]["maxLength"] == MAX_PATH_ARG_CHARS for p in in_path)
