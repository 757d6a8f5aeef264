"""design.toml validation, the seeded library, ad-hoc files, adding, remixing and credits."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh
from library_helpers import MODELS, write_design

from fabnet.errors import ConfigError, Conflict, LicenseError, MeshError, NotFound
from fabnet.library.catalog import add_design, remix_design
from fabnet.library.design import list_designs, load_design, resolve_design
from fabnet.library.design_toml import DesignRecord
from fabnet.library.lineage import credits

SEEDED = {
    "cube-xyz-20mm": ("cube_xyz_20mm.stl", "MIT", "trimesh"),
    "3dbenchy": ("benchy.stl", "CC0-1.0", "Creative Tools"),
    "faceshield-frame": ("faceshield_frame.stl", "MIT", "aon3d"),
    "torture-test-v2": ("torture_test_v2.stl", "AGPL-3.0-or-later", "CuraEngine"),
    "extruder-idler": ("extruder_idler.stl", "AGPL-3.0-only", "Prusa"),
    "plate-mixed": ("plate_mixed.stl", "AGPL-3.0-or-later AND AGPL-3.0-only AND MIT", "fabnet"),
}


@pytest.fixture()
def seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FABNET_DESIGNS_DIR", raising=False)


@pytest.mark.usefixtures("seeded")
def test_seeded_library_keeps_sources_licenses_and_bytes(model_facts: dict[str, dict]) -> None:
    found = {d.slug: d for d in list_designs()}
    assert set(SEEDED) | {"faceshield-frame-short"} <= set(found)
    for slug, (file, license_id, author) in SEEDED.items():
        design = found[slug]
        assert design.license == license_id
        assert author in design.author
        assert design.mesh_path.name == file
        assert design.sha256 == model_facts[file]["sha256"], f"{slug} is not a byte copy"
        assert slug == "plate-mixed" or (design.source_url or "").startswith("https://github.com/")


@pytest.mark.usefixtures("seeded")
def test_seeded_remix_is_the_scaled_faceshield() -> None:
    short = load_design("faceshield-frame-short")
    assert short.remix_of == "faceshield-frame"
    assert short.license == load_design("faceshield-frame").license == "MIT"
    parent = trimesh.load_mesh(MODELS / "faceshield_frame.stl", process=False)
    child = trimesh.load_mesh(short.mesh_path, process=False)
    assert child.extents == pytest.approx(parent.extents * [0.9, 0.9, 1.0], rel=1e-5)
    lines = [c.line() for c in credits(short)]
    assert lines[1].startswith("COVID-19 Face Shield Frame R01 vR01 by aon3d, MIT, https://")


def test_unknown_key_is_an_error_naming_key_and_file(library: Path) -> None:
    folder = write_design(library, "hook", "MIT")
    toml = folder / "design.toml"
    toml.write_text(toml.read_text() + 'colour = "red"\n')
    with pytest.raises(ConfigError, match=r"design.toml: unknown key 'colour'") as info:
        load_design("hook")
    assert str(toml) in str(info.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("version = 1.0", "key 'version' must be a string, got float 1.0"),
        ('tags = "a,b"', "key 'tags' must be a list of strings"),
        ('source_url = "ftp://x"', "key 'source_url' must be an http"),
        ('license = "CC-BY-4"', "unknown SPDX id 'CC-BY-4'"),
        ('mesh = "../cube.stl"', "key 'mesh' must be a file name in the folder"),
    ],
)
def test_mistyped_values_are_named(library: Path, line: str, message: str) -> None:
    folder = write_design(library, "hook", "MIT")
    key = line.split(" = ")[0]
    kept = [
        row
        for row in (folder / "design.toml").read_text().splitlines()
        if not row.startswith(f"{key} =")
    ]
    (folder / "design.toml").write_text("\n".join(kept + [line]) + "\n")
    with pytest.raises(ConfigError, match=message):
        load_design("hook")


def test_resolve_accepts_a_slug_or_a_mesh_path(library: Path, tmp_path: Path) -> None:
    write_design(library, "hook", "MIT")
    assert resolve_design("hook").license == "MIT"
    adhoc = resolve_design(str(MODELS / "cube_xyz_20mm.stl"))
    assert adhoc.license == "NOASSERTION"
    assert adhoc.ad_hoc and adhoc.slug == "cube-xyz-20mm"
    assert adhoc.sha256 == "22605742d8305430f1d803fc74cbe222333a9a6903339572171cd6b8b16c4d6c"
    with pytest.raises(NotFound, match="no design 'nothing'"):
        resolve_design("nothing")
    with pytest.raises(NotFound):
        resolve_design(str(tmp_path / "missing.stl"))


def _record(license_id: str = "MIT", remix_of: str | None = None) -> DesignRecord:
    return DesignRecord(
        name="Idler",
        author="someone",
        license=license_id,
        version="2",
        mesh="",
        remix_of=remix_of,
        source_url="https://example.org/idler",
    )


def test_add_copies_and_refuses_an_existing_slug(library: Path) -> None:
    added = add_design(MODELS / "extruder_idler.stl", "idler", _record("AGPL-3.0-only"), library)
    assert (library / "idler" / "extruder_idler.stl").is_file()
    assert load_design("idler") == added.design
    with pytest.raises(Conflict, match="design 'idler' already exists"):
        add_design(MODELS / "extruder_idler.stl", "idler", _record("AGPL-3.0-only"), library)


def test_add_refuses_a_broken_mesh_with_its_open_edges(library: Path) -> None:
    with pytest.raises(MeshError, match="59 open edges") as info:
        add_design(
            MODELS / "conveyor_broken_x0.1.stl", "conveyor", _record("GPL-2.0-or-later"), library
        )
    assert info.value.reason == "not_watertight"
    assert not (library / "conveyor").exists()
    assert list(library.iterdir()) == []


def test_remix_of_nd_design_is_refused(library: Path) -> None:
    write_design(library, "boat", "CC-BY-ND-4.0")
    with pytest.raises(LicenseError, match="allows no derivatives"):
        remix_design(
            "boat", "boat-2", MODELS / "cube_xyz_20mm.stl", "Boat 2", "me", directory=library
        )
    assert not (library / "boat-2").exists()


def test_remix_of_sa_design_must_keep_the_license(library: Path) -> None:
    write_design(library, "hook", "CC-BY-SA-4.0")
    with pytest.raises(LicenseError, match="must keep CC-BY-SA-4.0, not CC-BY-4.0"):
        remix_design(
            "hook", "hook-2", MODELS / "cube_xyz_20mm.stl", "Hook 2", "me", "CC-BY-4.0",
            directory=library,
        )  # fmt: skip
    added = remix_design(
        "hook", "hook-2", MODELS / "cube_xyz_20mm.stl", "Hook 2", "me", directory=library
    )
    assert added.design.license == "CC-BY-SA-4.0"
    assert added.design.remix_of == "hook"


def test_credits_walk_two_ancestors(library: Path) -> None:
    write_design(library, "base", "CC-BY-NC-4.0")
    write_design(library, "middle", "CC-BY-NC-4.0", remix_of="base")
    write_design(library, "top", "CC-BY-NC-4.0", remix_of="middle")
    chain = credits(load_design("top"))
    assert [c.slug for c in chain] == ["top", "middle", "base"]
    assert chain[2].line() == (
        "Design base v1.0 by author of base, CC-BY-NC-4.0, https://example.org/base"
    )
    assert all(c.non_commercial for c in chain)


def test_credit_cycle_and_missing_parent(library: Path) -> None:
    write_design(library, "a", "MIT", remix_of="b")
    write_design(library, "b", "MIT", remix_of="a")
    with pytest.raises(ConfigError, match="remix_of forms a cycle: a -> b -> a"):
        credits(load_design("a"))
    write_design(library, "orphan", "MIT", remix_of="gone")
    with pytest.raises(NotFound, match="orphan is a remix of 'gone'"):
        credits(load_design("orphan"))
