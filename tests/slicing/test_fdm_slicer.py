"""The built-in FDM slicer on the shared real models: safe G-code, right layers, plausible grams."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
import shapely
import trimesh

from fabnet.errors import InvalidInput, MeshError
from fabnet.gcode import analyse, check
from fabnet.library.mesh import load_mesh, prepare_mesh
from fabnet.profiles import FdmMaterial, FdmProfile, load_materials, load_profile
from fabnet.slicing.base import SliceSettings
from fabnet.slicing.fdm import BuiltinSlicer, read_header

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"


def _profile(profile_id: str = "prusa_mk3s") -> FdmProfile:
    profile = load_profile(profile_id)
    assert isinstance(profile, FdmProfile)
    return profile


def _material(name: str = "PLA") -> FdmMaterial:
    material = load_materials().get(name)
    assert isinstance(material, FdmMaterial)
    return material


def _prepared(name: str, profile: FdmProfile) -> trimesh.Trimesh:
    return prepare_mesh(load_mesh(MODELS / f"{name}.stl"), profile).mesh


def _layer_extrusions(gcode: str, layer: int) -> shapely.Geometry:
    """Every extruding move of ``;LAYER:<layer>`` as one MultiLineString (absolute XY)."""
    body = gcode.split(f";LAYER:{layer}\n", 1)[1].split(";LAYER:", 1)[0]
    x = y = float("nan")
    segments = []
    for line in body.splitlines():
        move = re.match(r"G[01] X([-\d.]+) Y([-\d.]+)(?: E(\d[\d.]*))?", line)
        if move:
            nx, ny = float(move[1]), float(move[2])
            if move[3] is not None:
                segments.append([(x, y), (nx, ny)])
            x, y = nx, ny
    return shapely.multilinestrings(segments)


def _header(gcode: str) -> dict[str, float]:
    header = read_header(gcode)
    assert header is not None, gcode[:500]
    return header


def _slice_and_check(name: str, profile: FdmProfile, settings: SliceSettings) -> str:
    """Slice a shared model; check safety, layer count and grams (from the analyser's header)."""
    mesh = _prepared(name, profile)
    material = _material()
    result = BuiltinSlicer().slice(mesh, profile, material, settings)
    assert result.slicer == "builtin"
    violations = check(result.gcode, profile)
    assert violations == [], violations[:5]
    layers = len(re.findall(r"^;LAYER:\d+$", result.gcode, re.M))
    assert abs(layers - float(mesh.extents[2]) / settings.layer_height_mm) <= 1
    solid_g = mesh.volume / 1000.0 * material.density_g_cm3 * settings.quantity
    # Walls and skins are solid, infill is sparse: somewhere between a fifth and all of it.
    grams = _header(result.gcode)["filament_g"]
    assert 0.2 * solid_g < grams < 1.1 * solid_g, (grams, solid_g)
    return result.gcode


@pytest.mark.parametrize(
    "name",
    ["cube_xyz_20mm", "torture_test_v2", "extruder_idler", "faceshield_frame", "plate_mixed"],
)
def test_shared_models_slice_to_safe_gcode(name: str) -> None:
    _slice_and_check(name, _profile(), SliceSettings())


def test_faceshield_fits_the_mk3s_only_turned_and_a_voron_as_is() -> None:
    mesh = _prepared("faceshield_frame", _profile("voron24_350"))
    turned = BuiltinSlicer().slice(mesh, _profile(), _material(), SliceSettings())
    assert any("turned 90°" in note for note in turned.notes)
    as_is = BuiltinSlicer().slice(mesh, _profile("voron24_350"), _material(), SliceSettings())
    assert not any("turned" in note for note in as_is.notes)
    assert check(as_is.gcode, _profile("voron24_350")) == []


def test_four_copies_do_not_overlap() -> None:
    gcode = _slice_and_check("cube_xyz_20mm", _profile(), SliceSettings(quantity=4))
    printed = _layer_extrusions(gcode, 20)
    islands = shapely.get_parts(shapely.buffer(printed, 0.3))
    assert len(islands) == 4
    for i, a in enumerate(islands):
        for b in islands[i + 1 :]:
            assert a.distance(b) >= 4.0
    assert {round(g.area / 100) for g in islands} == {round(islands[0].area / 100)}


def test_too_many_copies_are_refused_naming_sizes() -> None:
    mesh = _prepared("faceshield_frame", _profile())
    with pytest.raises(InvalidInput, match=r"do not fit the 250 x 210 mm"):
        BuiltinSlicer().slice(mesh, _profile(), _material(), SliceSettings(quantity=2))


def test_broken_conveyor_is_refused_before_slicing() -> None:
    with pytest.raises(MeshError) as caught:
        prepare_mesh(load_mesh(MODELS / "conveyor_broken_x0.1.stl"), _profile())
    assert caught.value.reason == "not_watertight"
    with pytest.raises(MeshError) as caught:
        prepare_mesh(load_mesh(MODELS / "conveyor_broken_raw.stl"), _profile())
    assert caught.value.reason == "wrong_units"


def test_gcode_follows_the_material_and_profile() -> None:
    cube = trimesh.load_mesh(MODELS / "cube_xyz_20mm.stl")  # off-origin and below z=0
    profile, material = _profile(), _material("PETG")
    seen: list[tuple[int, int]] = []
    gcode = (
        BuiltinSlicer(progress=lambda d, t: seen.append((d, t)))
        .slice(cube, profile, material, SliceSettings())
        .gcode
    )
    assert seen[-1] == (100, 100)
    assert "{" not in gcode and "M109 S230" in gcode and "M190 S85" in gcode
    assert "M83" in gcode
    before, after = gcode.split(";LAYER:1\n", 1)
    assert "M106" not in before and "M104 S240" in after and "M140 S90" in after
    assert "M106 S128" in after  # 50 % fan from layer 1
    first = before.split(";LAYER:0\n", 1)[1]
    feeds = [int(f) for f in re.findall(r"^G1 X.*E[\d.]+ F(\d+)", first, re.M)]
    assert feeds and max(feeds) <= 20 * 60
    assert re.search(r"^G1 E-0.8000 F2100$", gcode, re.M)  # retraction from the profile
    figures = analyse(gcode, profile, material)
    assert figures.bounds_min[2] == pytest.approx(0.2)
    header = _header(gcode)
    assert header["filament_g"] == pytest.approx(figures.grams, abs=0.01)
    assert header["estimated_time_s"] == pytest.approx(figures.time_s, abs=1.0)
    assert header["layer_count"] == figures.layers == 100
    x0, y0, x1, y1 = _layer_extrusions(gcode, 5).bounds
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((125.0, 105.0), abs=0.01)
    assert (x1 - x0, y1 - y0) == pytest.approx((19.55, 19.55), abs=0.01)  # 20 - one width


def test_feeds_obey_the_volumetric_limit() -> None:
    tpu = _material("TPU")
    gcode = (
        BuiltinSlicer()
        .slice(trimesh.creation.box(extents=[20, 20, 2]), _profile(), tpu, SliceSettings())
        .gcode
    )
    body = gcode.split(";LAYER:0\n", 1)[1]  # the profile's own purge line is not ours
    feeds = [int(f) for f in re.findall(r"^G1 X.*E[\d.]+ F(\d+)", body, re.M)]
    cap = tpu.max_volumetric_mm3_s / (0.45 * 0.2) * 60
    assert feeds and max(feeds) <= cap + 1


def test_more_infill_uses_more_filament() -> None:
    box = trimesh.creation.box(extents=[30, 30, 10])
    grams = []
    for infill in (0.0, 20.0, 60.0):
        gcode = (
            BuiltinSlicer()
            .slice(box, _profile(), _material(), SliceSettings(infill_percent=infill))
            .gcode
        )
        grams.append(analyse(gcode, _profile(), _material()).grams)
    assert grams[0] < grams[1] < grams[2]
    solid = replace(SliceSettings(), infill_percent=100.0)
    full = analyse(
        BuiltinSlicer().slice(box, _profile(), _material(), solid).gcode, _profile(), _material()
    )
    assert full.grams == pytest.approx(9.0 * 1.24, rel=0.1)  # 9 cm³ of PLA


@pytest.mark.slow
def test_benchy_slices_safely_and_fast() -> None:
    """The one slow test: 225k triangles, 240 layers."""
    profile = _profile()
    mesh = _prepared("benchy", profile)
    started = time.perf_counter()
    result = BuiltinSlicer().slice(mesh, profile, _material(), SliceSettings())
    elapsed = time.perf_counter() - started
    assert check(result.gcode, profile) == []
    figures = analyse(result.gcode, profile, _material())
    assert figures.layers == 240
    assert 5.0 < figures.grams < 19.3
    assert elapsed < 30.0, f"slicing benchy took {elapsed:.1f} s"
