"""CNC outside-profile toolpaths on real flat parts: extent, depth, tabs, GRBL dialect, safety."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh

from fabnet.errors import InvalidInput
from fabnet.gcode import check
from fabnet.library.mesh import load_mesh, prepare_mesh
from fabnet.profiles import CncMaterial, CncProfile, load_materials, load_profile
from fabnet.slicing.base import SliceSettings
from fabnet.slicing.cnc import CncToolpathGenerator, part_outline

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"
MOVE = re.compile(r"^G([01])(?: X([-\d.]+) Y([-\d.]+))?(?: Z([-\d.]+))?", re.M)


def _shapeoko() -> CncProfile:
    profile = load_profile("shapeoko3")
    assert isinstance(profile, CncProfile)
    return profile


def _stock(name: str = "plywood") -> CncMaterial:
    material = load_materials().get(name)
    assert isinstance(material, CncMaterial)
    return material


def _moves(gcode: str) -> list[tuple[float, float, float, bool]]:
    """(x, y, z, is_feed) after every G0/G1, tracking modal coordinates."""
    x = y = z = 0.0
    out = []
    for match in MOVE.finditer(gcode):
        if match[2] is not None:
            x, y = float(match[2]), float(match[3])
        if match[4] is not None:
            z = float(match[4])
        out.append((x, y, z, match[1] == "1"))
    return out


def _cut(
    name: str, material: CncMaterial, settings: SliceSettings | None = None
) -> tuple[trimesh.Trimesh, str]:
    mesh = prepare_mesh(load_mesh(MODELS / f"{name}.stl"), _shapeoko()).mesh
    gcode = (
        CncToolpathGenerator().slice(mesh, _shapeoko(), material, settings or SliceSettings()).gcode
    )
    assert check(gcode, _shapeoko()) == []
    return mesh, gcode


@pytest.mark.parametrize("name", ["faceshield_frame", "cube_xyz_20mm"])
def test_outline_cut_extent_depth_and_tabs(name: str) -> None:
    stock = _stock()
    mesh, gcode = _cut(name, stock)
    moves = np.array(_moves(gcode))
    cutting = moves[(moves[:, 3] == 1) & (moves[:, 2] < 0)]
    extent = cutting[:, :2].max(axis=0) - cutting[:, :2].min(axis=0)
    x0, y0, x1, y1 = part_outline(mesh).bounds
    tool = _shapeoko().tool()
    assert extent == pytest.approx(
        (x1 - x0 + tool.diameter_mm, y1 - y0 + tool.diameter_mm), abs=0.05
    )
    assert cutting[:, :2].min(axis=0) == pytest.approx((10.0, 10.0), abs=0.01)  # the margin
    deepest = -(stock.thickness_mm + 0.2)
    assert moves[:, 2].min() == pytest.approx(deepest)
    # On the final pass the cutter rises to leave 2 mm of stock at each of the 4 tabs.
    last_pass = gcode.split(f"G1 Z{deepest:.3f}", 1)[1].split("G0 Z", 1)[0]
    tab_z = -(stock.thickness_mm - 2.0)
    assert last_pass.count(f"G1 Z{tab_z:.3f}") == 4
    assert last_pass.count(f"G1 Z{deepest:.3f}") == 4  # back down after each tab


def test_grbl_dialect_and_spindle() -> None:
    _, gcode = _cut("cube_xyz_20mm", _stock("mdf"))
    assert "G21 G90 G17 G94" in gcode
    lines = gcode.splitlines()
    spindle_on = lines.index("M3 S18000")
    assert lines[spindle_on + 1] == "G4 P2"
    assert not any(_moves_below_zero_before(lines, spindle_on))
    assert re.search(r"^M5", gcode, re.M)
    assert not re.search(r"M104|M140|M109|M190|M106|\bE[-\d]|^T\d", gcode, re.M)
    plunges = re.findall(r"^G1 Z-[\d.]+ F(\d+)", gcode, re.M)
    assert plunges and set(plunges) == {"635"}
    assert re.search(r"^G1 X[-\d.]+ Y[-\d.]+ F1905$", gcode, re.M)


def _moves_below_zero_before(lines: list[str], index: int) -> list[str]:
    return [line for line in lines[:index] if re.match(r"G[01].*Z-", line)]


def test_spindle_speed_is_clamped_to_the_machine() -> None:
    fast = replace(_stock(), spindle_rpm=45000.0)
    _, gcode = _cut("cube_xyz_20mm", fast)
    assert "M3 S30000" in gcode


def test_no_tabs_when_asked_for_none() -> None:
    stock = _stock("acrylic")
    _, gcode = _cut("cube_xyz_20mm", stock, SliceSettings(tabs=0))
    assert f"G1 Z{-(stock.thickness_mm - 2.0):.3f}" not in gcode


def test_refusals_name_the_problem() -> None:
    mesh = trimesh.creation.box(extents=[100, 100, 3])
    generator = CncToolpathGenerator()
    with pytest.raises(InvalidInput, match=r"cuts at most 19.05 mm"):
        generator.slice(mesh, _shapeoko(), replace(_stock(), thickness_mm=25.0), SliceSettings())
    with pytest.raises(InvalidInput, match=r"do not fit the 425 x 425 mm"):
        generator.slice(mesh, _shapeoko(), _stock(), SliceSettings(quantity=20))
    with pytest.raises(InvalidInput, match=r"no tool T7"):
        generator.slice(mesh, _shapeoko(), _stock(), SliceSettings(tool_number=7))
    with pytest.raises(InvalidInput, match=r"not a CNC machine"):
        generator.slice(mesh, load_profile("prusa_mk3s"), _stock(), SliceSettings())


def test_copies_are_cut_apart_inside_the_work_area() -> None:
    _, gcode = _cut("cube_xyz_20mm", _stock(), SliceSettings(quantity=4))
    starts = re.findall(r"^G0 X([-\d.]+) Y([-\d.]+)\nG1 Z-", gcode, re.M)
    assert len(starts) == 4  # one outline each
    corners = sorted((float(x), float(y)) for x, y in starts)
    gaps = {round(abs(b[0] - a[0]), 2) for a, b in zip(corners, corners[1:], strict=False)}
    assert max(gaps) >= 20.0 + 6.35 + 5.0 - 0.01  # part + cutter + gap


def test_analysis_reports_what_the_cut_parts_weigh() -> None:
    from fabnet.gcode import analyse

    mdf = _stock("mdf")
    mesh, gcode = _cut("cube_xyz_20mm", mdf)
    area = part_outline(mesh).area
    assert area == pytest.approx(400.0, abs=0.01)  # a 20 mm cube's footprint
    expected = area * mdf.thickness_mm / 1000.0 * mdf.density_g_cm3
    assert analyse(gcode, _shapeoko()).grams == pytest.approx(expected, abs=0.01)
