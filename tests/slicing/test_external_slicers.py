"""PrusaSlicer and CuraEngine adapters against the real binaries on real models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import trimesh

import fabnet.gcode
from fabnet.errors import InvalidInput, ToolFailed, ToolMissing
from fabnet.profiles import FdmMaterial, FdmProfile, load_materials, load_profile
from fabnet.slicing.base import Slicer, SliceResult, SliceSettings
from fabnet.slicing.curaengine import CuraEngineSlicer, find_resources
from fabnet.slicing.external import SlicerEstimate, fill_placeholders
from fabnet.slicing.prusaslicer import PrusaSlicer

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
SLICERS = ["prusaslicer", "curaengine"]
_S_RE = re.compile(r"^(M10[49]|M1[49]0)\s+S([0-9.]+)", re.MULTILINE)

_MOVE_RE = re.compile(r"^G[01][ \t]([^;\n]*)", re.MULTILINE)
_FIRST_LAYER_RE = re.compile(r"^;(LAYER_CHANGE|LAYER:0)$", re.MULTILINE)

_cache: dict[tuple[str, str, str, str, int], SliceResult] = {}


def print_bounds(gcode: str) -> tuple[list[float], list[float]]:
    """Min and max X, Y, Z of extruding moves from the first layer on (not the purge line).

    Assumes relative extrusion (M83), which both adapters ask for.
    """
    start = _FIRST_LAYER_RE.search(gcode)
    assert start is not None, "no first-layer marker"
    pos = {"X": 0.0, "Y": 0.0, "Z": 0.0}
    lo, hi = [1e9, 1e9, 1e9], [-1e9, -1e9, -1e9]
    for match in _MOVE_RE.finditer(gcode, start.end()):
        words = {w[0]: float(w[1:]) for w in match.group(1).split() if w[0] in "XYZE"}
        pos.update({k: v for k, v in words.items() if k in pos})
        if words.get("E", 0.0) > 0 and ("X" in words or "Y" in words):
            for i, axis in enumerate("XYZ"):
                lo[i], hi[i] = min(lo[i], pos[axis]), max(hi[i], pos[axis])
    return lo, hi


def slicer_violations(gcode: str, profile: FdmProfile, material: FdmMaterial) -> list[str]:
    """Safety violations on lines the slicer wrote (the profile's own start/end G-code is the
    profile's business: creality_ender3's moves Z at 50 mm/s over its 5 mm/s limit)."""
    own = fill_placeholders(profile.start_gcode + "\n" + profile.end_gcode, material)
    own_lines = {line.split(";")[0].strip() for line in own.splitlines()}
    return [
        f"{v.line_no}: {v.raw} ({v.message})"
        for v in fabnet.gcode.check(gcode, profile)
        if v.raw.split(";")[0].strip() not in own_lines
    ]


def make_slicer(name: str, **kwargs: object) -> Slicer:
    if name == "prusaslicer":
        return PrusaSlicer(**kwargs)  # type: ignore[arg-type]
    return CuraEngineSlicer(**kwargs)  # type: ignore[arg-type]


def load_model(name: str) -> trimesh.Trimesh:
    mesh = trimesh.load(MODELS / f"{name}.stl", force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def fdm(profile_id: str, material_name: str = "PLA") -> tuple[FdmProfile, FdmMaterial]:
    profile = load_profile(profile_id)
    material = load_materials().get(material_name)
    assert isinstance(profile, FdmProfile) and isinstance(material, FdmMaterial)
    return profile, material


def sliced(
    slicer: str, profile_id: str, model: str, material: str = "PLA", quantity: int = 1
) -> SliceResult:
    """Slice once per combination for the whole module (the slicers are the slow part)."""
    key = (slicer, profile_id, model, material, quantity)
    if key not in _cache:
        profile, mat = fdm(profile_id, material)
        settings = SliceSettings(quantity=quantity)
        _cache[key] = make_slicer(slicer).slice(load_model(model), profile, mat, settings)
    return _cache[key]


@pytest.mark.parametrize("slicer", SLICERS)
@pytest.mark.parametrize("profile_id", ["prusa_mk3s", "creality_ender3"])
@pytest.mark.parametrize("model", ["cube_xyz_20mm", "extruder_idler"])
def test_gcode_is_safe_layered_and_inside_the_bed(slicer: str, profile_id: str, model: str) -> None:
    profile, material = fdm(profile_id)
    result = sliced(slicer, profile_id, model)
    assert result.slicer == slicer
    height = float(load_model(model).extents[2])
    analysis = fabnet.gcode.analyse(result.gcode, profile, material)
    expected_layers = round(height / 0.2)
    assert abs(analysis.layers - expected_layers) <= 2, (analysis.layers, expected_layers)
    assert slicer_violations(result.gcode, profile, material) == []
    lo, hi = print_bounds(result.gcode)
    assert 0 <= lo[0] and hi[0] <= profile.volume.x_mm
    assert 0 <= lo[1] and hi[1] <= profile.volume.y_mm
    assert 0 < lo[2] and hi[2] <= height + 0.3
    # centred on the bed (the skirt is symmetric around the part)
    centre_x = (lo[0] + hi[0]) / 2
    centre_y = (lo[1] + hi[1]) / 2
    assert abs(centre_x - profile.volume.x_mm / 2) < 3, centre_x
    assert abs(centre_y - profile.volume.y_mm / 2) < 3, centre_y


@pytest.mark.parametrize("slicer", SLICERS)
def test_own_estimate_agrees_with_our_analyser(slicer: str) -> None:
    profile, material = fdm("prusa_mk3s")
    result = sliced(slicer, "prusa_mk3s", "cube_xyz_20mm")
    own = SlicerEstimate.from_notes(result.notes)
    assert own.time_s is not None and own.time_s > 60
    assert own.grams is not None and own.filament_mm is not None
    analysis = fabnet.gcode.analyse(result.gcode, profile, material)
    # the start G-code's purge line (counted by us, maybe not by them) is small against the part
    assert analysis.grams == pytest.approx(own.grams, rel=0.05)
    assert analysis.filament_mm == pytest.approx(own.filament_mm, rel=0.05)
    # a 20 mm cube, 2 walls, 20 % infill: 3..9 g of PLA
    assert 3 < own.grams < 9


@pytest.mark.parametrize("slicer", SLICERS)
def test_temperatures_are_the_materials(slicer: str) -> None:
    _, material = fdm("creality_ender3", "PETG")  # PETG: first layer differs from the rest
    gcode = sliced(slicer, "creality_ender3", "cube_xyz_20mm", material="PETG").gcode
    nozzle = {float(v) for c, v in _S_RE.findall(gcode) if c in ("M104", "M109")}
    bed = {float(v) for c, v in _S_RE.findall(gcode) if c in ("M140", "M190")}
    assert nozzle == {material.first_layer_nozzle_c, material.nozzle_c, 0.0}
    assert bed == {material.first_layer_bed_c, material.bed_c, 0.0}
    assert "M83" in gcode  # relative extrusion, as our start/end G-code expects


@pytest.mark.parametrize("slicer", SLICERS)
def test_quantity_three_gives_three_copies(slicer: str) -> None:
    profile, _ = fdm("prusa_mk3s")
    one_gcode = sliced(slicer, "prusa_mk3s", "cube_xyz_20mm").gcode
    three_gcode = sliced(slicer, "prusa_mk3s", "cube_xyz_20mm", quantity=3).gcode
    lo1, hi1 = print_bounds(one_gcode)
    lo3, hi3 = print_bounds(three_gcode)
    spread_one = (hi1[0] - lo1[0]) + (hi1[1] - lo1[1])
    spread_three = (hi3[0] - lo3[0]) + (hi3[1] - lo3[1])
    assert spread_three > spread_one + 2 * 20  # at least two more 20 mm cubes side by side
    assert all(0 <= lo3[i] and hi3[i] <= size for i, size in enumerate([250, 210]))
    one = SlicerEstimate.from_notes(sliced(slicer, "prusa_mk3s", "cube_xyz_20mm").notes)
    three = SlicerEstimate.from_notes(
        sliced(slicer, "prusa_mk3s", "cube_xyz_20mm", quantity=3).notes
    )
    assert one.filament_mm and three.filament_mm
    assert three.filament_mm == pytest.approx(3 * one.filament_mm, rel=0.1)
    assert slicer_violations(three_gcode, profile, fdm("prusa_mk3s")[1]) == []


@pytest.mark.parametrize("slicer", SLICERS)
def test_missing_binary_says_how_to_install(slicer: str, tmp_path: Path) -> None:
    profile, material = fdm("prusa_mk3s")
    with pytest.raises(ToolMissing, match="apt-get install (prusa-slicer|cura-engine)"):
        make_slicer(slicer, search_path=str(tmp_path)).slice(
            load_model("cube_xyz_20mm"), profile, material, SliceSettings()
        )


@pytest.mark.parametrize("slicer", SLICERS)
def test_timeout_is_a_tool_failure(slicer: str) -> None:
    profile, material = fdm("prusa_mk3s")
    with pytest.raises(ToolFailed, match="timed out"):
        make_slicer(slicer, timeout_s=0.01).slice(
            load_model("extruder_idler"), profile, material, SliceSettings()
        )


@pytest.mark.parametrize("slicer", SLICERS)
def test_parts_that_do_not_fit_are_refused_before_running(slicer: str) -> None:
    profile, material = fdm("prusa_mk3s")
    with pytest.raises(InvalidInput, match="quantity 200"):
        make_slicer(slicer).slice(
            load_model("cube_xyz_20mm"), profile, material, SliceSettings(quantity=200)
        )
    cnc = load_profile("shapeoko3")
    with pytest.raises(InvalidInput, match="FDM only"):
        make_slicer(slicer).slice(load_model("cube_xyz_20mm"), cnc, material, SliceSettings())


def test_curaengine_with_a_wrong_search_path_fails_loudly(tmp_path: Path) -> None:
    """CuraEngine exits 0 and writes G-code from defaults when its definitions are incomplete."""
    (tmp_path / "definitions").mkdir()
    shutil.copy(find_resources() / "definitions" / "fdmprinter.def.json", tmp_path / "definitions")
    profile, material = fdm("prusa_mk3s")
    slicer = CuraEngineSlicer(resources=tmp_path)  # no extruders/, no fdmextruder.def.json
    with pytest.raises(ToolFailed, match=r"\[ERROR\] Couldn't find definition file .*fdmextruder"):
        slicer.slice(load_model("cube_xyz_20mm"), profile, material, SliceSettings())


def test_curaengine_without_definitions_is_a_tool_failure(tmp_path: Path) -> None:
    profile, material = fdm("prusa_mk3s")
    with pytest.raises(ToolFailed, match="Couldn't open JSON file"):
        CuraEngineSlicer(resources=tmp_path).slice(
            load_model("cube_xyz_20mm"), profile, material, SliceSettings()
        )
