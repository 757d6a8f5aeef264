"""Hostile mesh files against the library: counts bounded before reading, reader errors as
MeshError, bounded repair, the check in a limited child, slugs fully matched, bad designs
reported and skipped at hub start."""

from __future__ import annotations

import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_meshes import (
    corpus,
    fan_out_3mf,
    fan_out_triangles,
    flat_square_stl,
    model_xml,
    soup_stl,
    tetra_object,
    threemf_bytes,
)
from library_helpers import MODELS, write_design

from fabnet.errors import ConfigError, MeshError, NotFound
from fabnet.hub.designs import DesignCatalog
from fabnet.library.catalog import STAGING, add_design
from fabnet.library.cli import designs
from fabnet.library.design import load_design
from fabnet.library.design_toml import DesignRecord, check_slug
from fabnet.library.mesh import check_mesh, load_mesh
from fabnet.library.mesh_sandbox import check_upload
from fabnet.library.tolerances import MAX_FILL_OPEN_EDGES, MAX_TRIANGLES
from fabnet.store import Store

RECORD = DesignRecord(name="X", author="ada", license="MIT", version="1", mesh="")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_3mf_component_fan_out_is_refused_before_expanding(tmp_path: Path) -> None:
    path = _write(tmp_path / "fan.3mf", fan_out_3mf())
    assert path.stat().st_size < 6 * 1024
    with pytest.raises(MeshError, match=f"expand to {fan_out_triangles()} triangles") as info:
        load_mesh(path)
    assert info.value.reason == "too_many_triangles"
    small = _write(tmp_path / "small.3mf", fan_out_3mf(levels=3, fan=2))
    assert len(load_mesh(small).faces) == fan_out_triangles(levels=3, fan=2)


def test_stl_counts_are_bounded_before_reading(tmp_path: Path) -> None:
    # Sparse files: the sizes are real, the disk use is not; reading them would take long.
    binary = tmp_path / "huge.stl"
    with binary.open("wb") as handle:
        handle.write(b"\0" * 80 + (3_000_000).to_bytes(4, "little"))
        handle.truncate(84 + 50 * 3_000_000)
    with pytest.raises(MeshError, match="too many triangles: 3000000, the limit is 2000000"):
        load_mesh(binary)
    ascii_stl = tmp_path / "huge-ascii.stl"
    with ascii_stl.open("wb") as handle:
        handle.write(b"solid big\n")
        handle.truncate(200 * MAX_TRIANGLES)
    with pytest.raises(MeshError, match="too many triangles") as info:
        load_mesh(ascii_stl)
    assert info.value.reason == "too_many_triangles"
    lying = _write(tmp_path / "lying.stl", (MODELS / "cube_xyz_20mm.stl").read_bytes()[:-50])
    with pytest.raises(MeshError, match="not an STL file"):
        load_mesh(lying)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("not-zip.3mf", b"PK\x03\x04" + b"\0" * 64),
        ("word.3mf", threemf_bytes(model_xml(tetra_object(1, "abc"), '<item objectid="1"/>'))),
        (
            "bad-index.3mf",
            threemf_bytes(
                model_xml(
                    tetra_object(1).replace('v3="1"', 'v3="99999999999999999999"'),
                    '<item objectid="1"/>',
                )
            ),
        ),  # fmt: skip
        (
            "missing.3mf",
            threemf_bytes(
                model_xml(tetra_object(1).replace(' y="0"', "", 1), '<item objectid="1"/>')
            ),
        ),  # fmt: skip
        ("cut.3mf", threemf_bytes(model_xml(tetra_object(1), "<item"))),
    ],
)
def test_3mf_reader_errors_are_mesh_errors(tmp_path: Path, name: str, data: bytes) -> None:
    with pytest.raises(MeshError) as info:
        load_mesh(_write(tmp_path / name, data))
    assert info.value.reason == "not_a_mesh" and name in str(info.value)


def test_a_corrupt_deflate_stream_is_a_mesh_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.3mf", threemf_bytes(model_xml(tetra_object(1), "") + " " * 5000))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("3D/3dmodel.model")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 20, start + info.compress_size - 4):
        data[i] ^= 0xA5
    with pytest.raises(MeshError, match="malformed 3MF|not a 3MF"):
        load_mesh(_write(path, bytes(data)))


def test_every_corpus_file_is_a_mesh_or_a_mesh_error(tmp_path: Path) -> None:
    for name, data in corpus(flips=4):
        path = _write(tmp_path / name, data)
        try:
            check_mesh(path)
        except (MeshError, NotFound):
            pass


def test_a_flat_square_is_refused_by_check(library: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "square.stl", flat_square_stl())
    report = check_mesh(path)
    assert not report.ok and report.problems[0].reason == "flat"
    assert "bbox_mm must be three sizes > 0" in report.problems[0].message
    folder = library / "square"
    folder.mkdir()
    shutil.copy(path, folder / "square.stl")
    (folder / "design.toml").write_text(
        'name = "Square"\nauthor = "x"\nlicense = "MIT"\nversion = "1"\nmesh = "square.stl"\n'
    )
    result = CliRunner().invoke(designs, ["check", "square"])
    assert result.exit_code == 1 and "bbox_mm must be three sizes > 0" in result.output


def test_a_refused_design_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    square = _write(tmp_path / "square.stl", flat_square_stl())
    with pytest.raises(MeshError, match="bbox_mm must be three sizes > 0"):
        add_design(square, "square", RECORD, root)

    def refuse(_: object) -> None:
        raise ConfigError("refused by the hub")

    with pytest.raises(ConfigError, match="refused by the hub"):
        add_design(MODELS / "cube_xyz_20mm.stl", "cube", RECORD, root, refuse)
    assert not root.exists()
    add_design(MODELS / "cube_xyz_20mm.stl", "cube", RECORD, root)
    assert sorted(p.name for p in root.iterdir()) == [STAGING, "cube"]
    assert not any((root / STAGING).iterdir())


def test_bad_designs_are_skipped_at_hub_start(library: Path, tmp_path: Path) -> None:
    write_design(library, "good", "MIT")
    flat = write_design(library, "flat", "MIT")
    (flat / "cube.stl").write_bytes(flat_square_stl())
    broken = write_design(library, "broken", "MIT")
    (broken / "design.toml").write_text("name = ")
    (library / ".staging" / "half").mkdir(parents=True)
    (library / ".staging" / "half" / "design.toml").write_text("name = ")
    catalog = DesignCatalog(Store(f"sqlite:///{tmp_path / 'hub.db'}"))
    assert catalog.register_library(datetime.now(UTC)) == 1
    assert "bbox_mm must be three sizes > 0" in catalog.skipped["flat"]
    assert "not valid TOML" in catalog.skipped["broken"]


def test_slugs_are_fully_matched(library: Path) -> None:
    write_design(library, "good", "MIT")
    with pytest.raises(ConfigError):
        check_slug("good\n")
    with pytest.raises(NotFound):
        load_design("good\n", library)
    assert load_design("good", library).slug == "good"


def test_repair_does_not_fill_the_holes_of_a_soup(tmp_path: Path) -> None:
    soup = _write(tmp_path / "soup.stl", soup_stl(MAX_FILL_OPEN_EDGES // 3 + 10))
    report = check_mesh(soup)
    assert any("did not try to fill holes" in note for note in report.notes)
    assert report.problems[0].reason == "not_watertight"


def test_the_upload_check_runs_in_a_limited_child(tmp_path: Path) -> None:
    cube = MODELS / "cube_xyz_20mm.stl"
    assert check_upload(cube) == check_mesh(cube)
    with pytest.raises(MeshError, match="expand to") as info:
        check_upload(_write(tmp_path / "fan.3mf", fan_out_3mf()))
    assert info.value.reason == "too_many_triangles"
    soup = _write(tmp_path / "soup.stl", soup_stl(200_000))
    with pytest.raises(MeshError, match="too complex to check") as info:
        check_upload(soup, memory_bytes=40 << 20)
    assert info.value.reason == "too_complex"
