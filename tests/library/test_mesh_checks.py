"""Mesh facts, safe repairs and refusals, on the real models and on broken copies of them."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from library_helpers import MODELS, box_with_hole

from fabnet.errors import MeshError
from fabnet.library.mesh import MeshReport, check_mesh, load_mesh, mesh_facts, prepare_mesh
from fabnet.profiles import load_profile

SMALL_MODELS = [
    "cube_xyz_20mm.stl",
    "faceshield_frame.stl",
    "torture_test_v2.stl",
    "extruder_idler.stl",
    "plate_mixed.stl",
    "conveyor_broken_x0.1.stl",
    "conveyor_broken_raw.stl",
]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_facts_match_models_json(name: str, model_facts: dict[str, dict]) -> None:
    expected = model_facts[name]
    facts = mesh_facts(load_mesh(MODELS / name))
    assert facts.triangles == expected["triangles"]
    assert facts.size_mm == pytest.approx(tuple(expected["size_mm"]), abs=0.01)
    assert facts.bbox_min_mm == pytest.approx(tuple(expected["bbox_min"]), abs=0.01)
    assert facts.open_edges == expected["boundary_edges"]
    assert facts.nonmanifold_edges == expected["nonmanifold_edges"]
    assert facts.bodies == expected["bodies"]
    assert facts.watertight == expected["watertight"]
    assert facts.winding_consistent == expected["winding_consistent"]
    if expected["watertight"]:
        assert facts.volume_mm3 == pytest.approx(expected["volume_mm3"], abs=0.1)
    else:
        assert facts.inside_out  # the conveyor's normals point inwards


def test_benchy_is_accepted_and_says_what_it_did(
    benchy_report: MeshReport, model_facts: dict[str, dict]
) -> None:
    raw = benchy_report.facts
    assert raw.triangles == 225_154
    assert (raw.bodies, raw.open_edges, raw.nonmanifold_edges) == (5, 0, 6)
    assert raw.volume_mm3 == pytest.approx(model_facts["benchy.stl"]["volume_mm3"], abs=0.1)
    assert benchy_report.ok, benchy_report.problems
    assert "dropped 4 sliver bodies (8 triangles, no volume)" in benchy_report.notes
    assert any(n.startswith("merged ") and "duplicate vertices" in n for n in benchy_report.notes)
    repaired = benchy_report.repaired
    assert repaired.bodies == 1
    assert repaired.open_edges == 0
    assert repaired.volume_mm3 == pytest.approx(raw.volume_mm3, rel=1e-9)


def test_broken_conveyor_is_refused_with_its_open_edge_count() -> None:
    with pytest.raises(MeshError) as info:
        prepare_mesh(load_mesh(MODELS / "conveyor_broken_x0.1.stl"))
    assert info.value.reason == "not_watertight"
    assert "not watertight: 59 open edges, 0 non-manifold edges" in str(info.value)
    assert "inside-out" in str(info.value)
    assert info.value.facts["open_edges"] == 59


def test_raw_conveyor_is_flagged_as_0_1_mm_units() -> None:
    report = check_mesh(MODELS / "conveyor_broken_raw.stl")
    reasons = [p.reason for p in report.problems]
    assert reasons[:2] == ["wrong_units", "not_watertight"]
    assert "scale by 0.1 to get 100.0 x 150.0 x 40.0 mm" in report.problems[0].message
    error = report.error()
    assert error.reason == "wrong_units"
    assert "59 open edges" in str(error)


def test_inches_cube_is_flagged_with_scale_25_4() -> None:
    cube = load_mesh(MODELS / "cube_xyz_20mm.stl")
    cube.apply_scale(1 / 25.4)
    with pytest.raises(MeshError, match=r"inch units: scale by 25.4 to get 20.0 x 20.0 x 20.0 mm"):
        prepare_mesh(cube)


def test_micron_part_suggests_0_001() -> None:
    cube = load_mesh(MODELS / "cube_xyz_20mm.stl")
    cube.apply_scale(1000.0)
    report = check_mesh(cube)
    assert report.problems[0].reason == "wrong_units"
    assert "scale by 0.001" in report.problems[0].message


def test_inside_out_closed_mesh_is_inverted() -> None:
    cube = load_mesh(MODELS / "cube_xyz_20mm.stl")
    cube.invert()
    assert mesh_facts(cube).inside_out
    prepared = prepare_mesh(cube)
    assert any(n.startswith("inverted inside-out mesh") for n in prepared.notes)
    assert not prepared.facts.inside_out
    assert prepared.facts.volume_mm3 == pytest.approx(7938.68, abs=0.01)
    assert mesh_facts(cube).inside_out  # the caller's mesh is untouched


def test_small_hole_is_filled_and_reported() -> None:
    holed = box_with_hole()
    assert mesh_facts(holed).open_edges == 3
    prepared = prepare_mesh(holed)
    assert "filled holes: closed 3 open edges with 1 new triangles" in prepared.notes
    assert prepared.facts.watertight
    assert prepared.facts.volume_mm3 == pytest.approx(1000.0)


def test_duplicate_face_is_removed() -> None:
    cube = load_mesh(MODELS / "torture_test_v2.stl")
    doubled = trimesh.Trimesh(
        vertices=cube.vertices, faces=np.vstack([cube.faces, cube.faces[:1]]), process=False
    )
    assert mesh_facts(doubled).nonmanifold_edges == 3  # each edge of the doubled face
    prepared = prepare_mesh(doubled)
    assert "removed 1 duplicate faces" in prepared.notes
    assert prepared.facts.watertight


def test_inconsistent_winding_is_fixed() -> None:
    box = trimesh.creation.box(extents=(10.0, 10.0, 10.0))
    faces = np.asarray(box.faces).copy()
    faces[0] = faces[0, ::-1]
    flipped = trimesh.Trimesh(vertices=box.vertices, faces=faces, process=False)
    assert not mesh_facts(flipped).winding_consistent
    prepared = prepare_mesh(flipped)
    assert any(n.startswith("made winding consistent") for n in prepared.notes)
    assert prepared.facts.winding_consistent
    assert prepared.facts.signed_volume_mm3 == pytest.approx(1000.0)


def test_triangle_limit() -> None:
    with pytest.raises(MeshError, match="too many triangles: 260, the limit is 100") as info:
        prepare_mesh(MODELS / "cube_xyz_20mm.stl", max_triangles=100)
    assert info.value.reason == "too_many_triangles"


def test_faceshield_does_not_fit_prusa_mini_but_fits_mk3s_rotated() -> None:
    mesh = load_mesh(MODELS / "faceshield_frame.stl")
    with pytest.raises(MeshError) as info:
        prepare_mesh(mesh, load_profile("prusa_mini"))
    assert info.value.reason == "does_not_fit"
    message = str(info.value)
    assert "part 182.4 x 218.9 x 3.2 mm" in message
    assert "build volume 180.0 x 180.0 x 180.0 mm" in message
    # 250 x 210 bed: only the part turned 90° about Z fits.
    assert prepare_mesh(mesh, load_profile("prusa_mk3s")).facts.triangles == 1940


@pytest.mark.parametrize(
    "name", ["cube_xyz_20mm.stl", "torture_test_v2.stl", "extruder_idler.stl", "plate_mixed.stl"]
)
def test_clean_models_pass_with_only_a_vertex_merge(name: str) -> None:
    prepared = prepare_mesh(MODELS / name)
    assert len(prepared.notes) == 1 and prepared.notes[0].startswith("merged ")
    assert prepared.facts.watertight


def test_report_json_shape() -> None:
    data = check_mesh(MODELS / "conveyor_broken_x0.1.stl").to_dict()
    assert data["ok"] is False
    assert data["facts"]["open_edges"] == 59
    assert data["facts"]["inside_out"] is True
    assert [p["reason"] for p in data["problems"]] == ["not_watertight", "inside_out"]
