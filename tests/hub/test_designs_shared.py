"""Designs across hub processes (issue 9): a design uploaded through one process (its folder in
the shared library, its row in the store) is found by another process's catalog when first
asked — by id, as a dispatcher asks, by slug and in the listing, as another api process does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trimesh

from fabnet.errors import NotFound
from fabnet.hub.designs import DesignCatalog, accept_facts
from fabnet.library.catalog import add_design
from fabnet.library.design_toml import DesignRecord
from fabnet.store import Store


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database two hub processes share: a new PostgreSQL database, or a SQLite file."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    yield str(request.getfixturevalue("pg_url"))


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on the one database, as two hub processes hold."""
    first, second = Store(db_url), Store(db_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def upload(catalog: DesignCatalog, tmp_path: Path, slug: str, extents: tuple[float, ...]) -> str:
    """What ``POST /designs`` does: the checked mesh into the library, then the catalog."""
    mesh = tmp_path / f"{slug}.stl"
    trimesh.creation.box(extents=extents).export(mesh)
    record = DesignRecord(name=slug.title(), author="ada", license="CC-BY-4.0", version="1",
                          mesh="")  # fmt: skip
    added = add_design(mesh, slug, record, catalog.library_dir, accept_facts)
    return catalog.register(added.design, datetime.now(UTC), added.facts).design_id


def test_an_upload_on_one_process_is_found_by_id_slug_and_listing_on_another(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    library = tmp_path / "shared" / "designs"
    api, other = DesignCatalog(stores[0], library), DesignCatalog(stores[1], library)
    assert other.entries() == []  # read before the upload: the later look-ups must not be stale
    design_id = upload(api, tmp_path, "odd-box", (17.0, 13.0, 9.0))

    entry = other.get(design_id)  # as the dispatcher asks for a job's design
    assert entry.design.slug == "odd-box"
    assert entry.design.mesh_path == library / "odd-box" / "odd-box.stl"
    assert sorted(entry.facts.size_mm) == pytest.approx([9.0, 13.0, 17.0])
    assert other.get(design_id) is entry  # kept: no second read of the folder
    assert other.resolve(design_id) is entry

    second_id = upload(api, tmp_path, "flat-box", (30.0, 20.0, 4.0))
    assert [e.design_id for e in other.entries()] == [second_id, design_id]  # by slug
    assert other.resolve("flat-box").design_id == second_id


def test_a_design_missing_from_the_store_or_the_folder_is_not_found_naming_why(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    api = DesignCatalog(stores[0], tmp_path / "shared" / "designs")
    elsewhere = DesignCatalog(stores[1], tmp_path / "own" / "designs")  # not the shared folder
    design_id = upload(api, tmp_path, "odd-box", (17.0, 13.0, 9.0))
    with pytest.raises(NotFound, match="must share the library folder"):
        elsewhere.get(design_id)
    with pytest.raises(NotFound, match="unknown design id"):
        api.get("f" * 64)


def test_a_broken_folder_in_the_library_does_not_hide_an_upload(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    library = tmp_path / "shared" / "designs"
    api, other = DesignCatalog(stores[0], library), DesignCatalog(stores[1], library)
    broken = library / "broken"
    broken.mkdir(parents=True)
    (broken / "design.toml").write_text('name = "no mesh key"\n')
    design_id = upload(api, tmp_path, "odd-box", (17.0, 13.0, 9.0))
    assert other.get(design_id).design.slug == "odd-box"
    assert [e.design.slug for e in other.entries()] == ["odd-box"]
