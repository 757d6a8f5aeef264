"""Loading STL/OBJ/3MF into one mesh, and refusing what is not a mesh or is a zip bomb."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from library_helpers import MODELS, cube_mesh, write_3mf

from fabnet.errors import MeshError, NotFound
from fabnet.library.mesh import load_mesh, mesh_facts
from fabnet.library.tolerances import MAX_3MF_MEMBERS


def test_text_file_named_stl_is_not_a_mesh(tmp_path: Path) -> None:
    path = tmp_path / "notes.stl"
    path.write_text("these are my notes, not a mesh\n")
    with pytest.raises(MeshError, match="not an STL file") as info:
        load_mesh(path)
    assert info.value.reason == "not_a_mesh"


def test_random_bytes_are_not_a_mesh(tmp_path: Path) -> None:
    path = tmp_path / "noise.stl"
    path.write_bytes(np.random.default_rng(1).bytes(333))
    with pytest.raises(MeshError) as info:
        load_mesh(path)
    assert info.value.reason == "not_a_mesh"


@pytest.mark.parametrize("content", [b"", b"solid empty\nendsolid empty\n"])
def test_empty_stl_is_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.stl"
    path.write_bytes(content)
    with pytest.raises(MeshError) as info:
        load_mesh(path)
    assert info.value.reason == "empty"


def test_binary_stl_with_zero_triangles_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.stl"
    path.write_bytes(b"\0" * 84)
    with pytest.raises(MeshError) as info:
        load_mesh(path)
    assert info.value.reason == "empty"


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_mesh(tmp_path / "nope.stl")
    other = tmp_path / "part.step"
    other.write_text("ISO-10303-21;")
    with pytest.raises(MeshError, match="unsupported mesh type '.step'"):
        load_mesh(other)


def test_ascii_and_binary_stl_keep_every_triangle(model_facts: dict[str, dict]) -> None:
    ascii_mesh = load_mesh(MODELS / "torture_test_v2.stl")
    binary_mesh = load_mesh(MODELS / "cube_xyz_20mm.stl")
    assert len(ascii_mesh.faces) == model_facts["torture_test_v2.stl"]["triangles"] == 6274
    assert len(binary_mesh.faces) == model_facts["cube_xyz_20mm.stl"]["triangles"] == 260


def test_obj_with_two_objects_is_concatenated(tmp_path: Path) -> None:
    tetra = "v 0 0 0\nv 10 0 0\nv 0 10 0\nv 0 0 10\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    moved = tetra.replace("v 0 0 0", "v 50 0 0").replace("v 10 0 0", "v 60 0 0")
    moved = moved.replace("v 0 10 0", "v 50 10 0").replace("v 0 0 10", "v 50 0 10")
    moved = moved.replace("f 1 3 2", "f 5 7 6").replace("f 1 2 4", "f 5 6 8")
    moved = moved.replace("f 1 4 3", "f 5 8 7").replace("f 2 3 4", "f 6 7 8")
    path = tmp_path / "two.obj"
    path.write_text("o first\n" + tetra + "o second\n" + moved)
    facts = mesh_facts(load_mesh(path))
    assert facts.triangles == 8
    assert facts.bodies == 2
    assert facts.watertight
    assert facts.size_mm == pytest.approx((60.0, 10.0, 10.0))
    assert facts.volume_mm3 == pytest.approx(2 * 1000 / 6)


def test_3mf_items_and_components_are_placed(tmp_path: Path) -> None:
    cube = cube_mesh()
    facts = mesh_facts(load_mesh(write_3mf(tmp_path / "cubes.3mf", cube, copies=3)))
    single = mesh_facts(cube)
    assert facts.triangles == 3 * 260
    assert facts.bodies == 3
    assert facts.watertight
    assert facts.size_mm == pytest.approx((220.0, 20.0, 20.0), abs=1e-3)
    assert facts.volume_mm3 == pytest.approx(3 * single.volume_mm3)


def test_3mf_in_inches_is_converted_to_mm(tmp_path: Path) -> None:
    cube = cube_mesh()
    cube.apply_scale(1 / 25.4)
    facts = mesh_facts(load_mesh(write_3mf(tmp_path / "inch.3mf", cube, unit="inch")))
    assert facts.size_mm == pytest.approx((20.0, 20.0, 20.0), abs=1e-3)


def test_3mf_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "fake.3mf"
    path.write_text("<model/>")
    with pytest.raises(MeshError, match="not a zip archive") as info:
        load_mesh(path)
    assert info.value.reason == "not_a_mesh"


def test_3mf_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "bomb.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("3D/3dmodel.model", b"\0" * (64 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(MeshError, match=r"compression ratio \d+:1, above the limit") as info:
        load_mesh(path)
    assert info.value.reason == "not_a_mesh"


def test_3mf_with_too_many_members_is_refused(tmp_path: Path) -> None:
    path = write_3mf(tmp_path / "many.3mf", cube_mesh())
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(MAX_3MF_MEMBERS):
            archive.writestr(f"Metadata/m{i}.txt", "x")
    with pytest.raises(MeshError, match=f"more than the limit of {MAX_3MF_MEMBERS}"):
        load_mesh(path)


def test_3mf_with_bad_triangle_index(tmp_path: Path) -> None:
    path = tmp_path / "bad.3mf"
    cube = cube_mesh()
    faces = np.asarray(cube.faces).copy()
    faces[0, 0] = 9999
    cube.faces = faces
    with pytest.raises(MeshError, match="triangle index out of range"):
        load_mesh(write_3mf(path, cube))
