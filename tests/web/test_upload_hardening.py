"""Hostile uploads through the real ``POST /api/v1/designs`` route: a mutated-mesh corpus never
gets an HTTP 500 and never grows the hub process by more than a bounded amount; refused
uploads leave nothing in the library, and a hub restarts over whatever the library holds."""

from __future__ import annotations

import io
import resource
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_support import CUBE, ApiHub, api_hub, json_of
from flask.testing import FlaskClient

from fabnet.hub.designs import DesignCatalog
from fabnet.store import Store

# The generated hostile files live with the library tests, which use them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "library"))
from hostile_meshes import corpus, fan_out_3mf, fan_out_triangles, flat_square_stl  # noqa: E402

META = {"name": "Hostile", "author": "ada", "license": "MIT"}
RSS_GROWTH_LIMIT_MB = 300


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def _post(client: FlaskClient, name: str, data: bytes, slug: str) -> tuple[int, dict[str, Any]]:
    form: dict[str, object] = {**META, "slug": slug, "file": (io.BytesIO(data), name)}
    answer = client.post("/api/v1/designs", data=form, content_type="multipart/form-data")
    return answer.status_code, json_of(answer)


def _library_entries(hub: ApiHub) -> set[str]:
    library = hub.root / "library"
    staged = {f".staging/{p.name}" for p in (library / ".staging").glob("*")}
    return {p.name for p in library.iterdir() if p.name != ".staging"} | staged


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_a_flat_square_is_refused_and_leaves_nothing(hub: ApiHub) -> None:
    ada = hub.client("ada")
    status, body = _post(ada, "square.stl", flat_square_stl(), "square")
    assert status == 400, body
    assert "bbox_mm must be three sizes > 0" in body["message"]
    assert _library_entries(hub) == {CUBE}
    restarted = DesignCatalog(Store(f"sqlite:///{hub.root / 'fabnet.db'}"), hub.root / "library")
    assert restarted.register_library(datetime.now(UTC)) == 1 and not restarted.skipped


def test_a_fan_out_3mf_is_refused_naming_the_count(hub: ApiHub) -> None:
    data = fan_out_3mf()
    assert len(data) < 6 * 1024
    status, body = _post(hub.client("ada"), "fan.3mf", data, "fan")
    assert status == 400, body
    assert body["reason"] == "too_many_triangles"
    assert f"{fan_out_triangles()} triangles" in body["message"]
    assert _library_entries(hub) == {CUBE}


def test_a_slug_ending_in_a_newline_is_refused(hub: ApiHub) -> None:
    cube = (hub.root / "library" / CUBE / "cube_xyz_20mm.stl").read_bytes()
    status, body = _post(hub.client("ada"), "cube.stl", cube, "cube-copy\n")
    assert status == 400 and "slug" in body["message"], body
    assert hub.client("ada").get(f"/api/v1/designs/{CUBE}%0A").status_code == 404
    assert _library_entries(hub) == {CUBE}


def test_mutated_mesh_corpus_never_500s_and_memory_stays_bounded(hub: ApiHub) -> None:
    files = corpus()
    ada = hub.client("ada")
    before_mb = _peak_rss_mb()
    statuses: Counter[int] = Counter()
    accepted: set[str] = set()
    for number, (name, data) in enumerate(files):
        slug = f"corpus-{number}"
        status, body = _post(ada, name, data, slug)
        statuses[status] += 1
        assert status < 500, (name, body)
        if status == 201:
            accepted.add(slug)
        else:
            assert 400 <= status < 500 and body["message"], (name, body)
    growth_mb = _peak_rss_mb() - before_mb
    print(
        f"corpus: {len(files)} files, statuses {dict(statuses)}, peak RSS {before_mb:.0f} MB + {growth_mb:.0f} MB"
    )
    assert growth_mb < RSS_GROWTH_LIMIT_MB
    assert statuses[400] > len(files) // 2
    assert _library_entries(hub) == {CUBE} | accepted


def test_an_upload_over_the_limit_is_refused_before_it_is_read(hub: ApiHub) -> None:
    """The request's declared size alone earns a 413: nothing is spooled to disk."""
    from fabnet.library.tolerances import MAX_UPLOAD_BYTES

    answer = hub.client("ada").post(
        "/api/v1/designs",
        data=b"x" * 16,
        environ_overrides={"CONTENT_LENGTH": str(MAX_UPLOAD_BYTES * 2)},
        content_type="multipart/form-data; boundary=x",
    )
    assert answer.status_code == 413, answer.get_data(as_text=True)
    assert _library_entries(hub) == {CUBE}
