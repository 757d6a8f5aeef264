"""Designs through the API: list, show (facts, license, lineage), upload with the library's
mesh checks, and remixes under license rules."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import CUBE, MODELS, ApiHub, api_hub, json_of
from flask.testing import FlaskClient

from fabnet.web.api.designs import DESIGN, DESIGN_DETAIL


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def _upload(client: FlaskClient, url: str, model: str, **fields: str) -> tuple[int, dict[str, Any]]:
    data: dict[str, object] = dict(fields)
    data["file"] = (io.BytesIO((MODELS / model).read_bytes()), model)
    answer = client.post(url, data=data, content_type="multipart/form-data")
    return answer.status_code, json_of(answer)


def test_list_and_show_with_facts_and_license(hub: ApiHub) -> None:
    rita = hub.client("rita")
    listed = [DESIGN.validate(d) for d in json_of(rita.get("/api/v1/designs"))]
    assert [d["slug"] for d in listed] == [CUBE]
    shown = DESIGN_DETAIL.validate(json_of(rita.get(f"/api/v1/designs/{CUBE}")))
    assert shown["facts"]["watertight"] is True
    assert shown["license_terms"]["expression"] == "MIT"
    assert [c["slug"] for c in shown["lineage"]] == [CUBE]
    by_id = json_of(rita.get(f"/api/v1/designs/{shown['id']}"))
    assert by_id["slug"] == CUBE
    assert rita.get("/api/v1/designs/no-such-design").status_code == 404


def test_upload_checks_the_mesh(hub: ApiHub) -> None:
    ada = hub.client("ada")
    meta = {"name": "Idler", "author": "ada", "license": "CC-BY-SA-4.0"}
    status, body = _upload(
        ada, "/api/v1/designs", "conveyor_broken_raw.stl", slug="conveyor", **meta
    )
    assert status == 400 and body["error"] == "MeshError" and body["reason"]
    assert not (hub.root / "library" / "conveyor").exists()
    status, body = _upload(ada, "/api/v1/designs", "faceshield_frame.stl", slug="visor", **meta)
    assert status == 201, body
    assert DESIGN_DETAIL.validate(body)["slug"] == "visor"
    assert (hub.root / "library" / "visor" / "design.toml").is_file()
    listed = json_of(ada.get("/api/v1/designs"))
    assert {d["slug"] for d in listed} == {CUBE, "visor"}
    status, body = _upload(ada, "/api/v1/designs", "faceshield_frame.stl", slug="visor", **meta)
    assert status == 409
    status, body = _upload(ada, "/api/v1/designs", "faceshield_frame.stl", slug="v2", name="x",
                           author="ada", license="Not-A-License")  # fmt: skip
    assert status == 400 and "Not-A-License" in body["message"]
    answer = ada.post(
        "/api/v1/designs", data={"slug": "x", **meta}, content_type="multipart/form-data"
    )
    assert answer.status_code == 400 and "file is required" in json_of(answer)["message"]


def test_remix_follows_license_rules(hub: ApiHub) -> None:
    ada = hub.client("ada")
    nd = {"name": "Frame", "author": "ada", "license": "CC-BY-ND-4.0"}
    status, _ = _upload(ada, "/api/v1/designs", "faceshield_frame.stl", slug="frame-nd", **nd)
    assert status == 201
    status, body = _upload(ada, "/api/v1/designs/frame-nd/remix", "faceshield_frame.stl",
                           slug="frame-remix", name="Frame remix")  # fmt: skip
    assert status == 400 and body["error"] == "LicenseError", body
    status, body = _upload(ada, f"/api/v1/designs/{CUBE}/remix", "extruder_idler.stl",
                           slug="cube-remix", name="Cube remix")  # fmt: skip
    assert status == 201, body
    assert body["remix_of"] == CUBE and body["license"] == "MIT" and body["author"] == "ada"
    assert [c["slug"] for c in body["lineage"]] == ["cube-remix", CUBE]
    parent = json_of(ada.get(f"/api/v1/designs/{CUBE}"))
    assert parent["remixes"] == ["cube-remix"]
    status, body = _upload(ada, f"/api/v1/designs/{CUBE}/remix", "extruder_idler.stl",
                           slug="cube-remix", name="again")  # fmt: skip
    assert status == 409
