"""The analyser's figures against real slicers' own estimates and hand-made files."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from fabnet.gcode import Analysis, analyse
from fabnet.profiles import FdmMaterial, load_materials, load_profile

DATA = Path(__file__).parents[1] / "data" / "gcode"
MODELS = Path(__file__).parents[1] / "data" / "models"
EXPECTED: dict[str, dict[str, float]] = json.loads((DATA / "expected.json").read_text())
TOLERANCE = 0.03


def profile_for(name: str) -> str:
    return "creality_ender3" if "_cura" in name else "prusa_mk3s"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_filament_and_grams_match_the_slicer_within_3_percent(name: str) -> None:
    expected = EXPECTED[name]
    result = analyse(DATA / name, load_profile(profile_for(name)))
    assert result.filament_mm == pytest.approx(expected["filament_mm"], rel=TOLERANCE)
    assert result.grams == pytest.approx(expected["grams"], rel=TOLERANCE)
    assert result.max_hotend_c == 215
    assert result.max_bed_c == 60


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if "_prusaslicer" in n))
def test_time_matches_prusaslicer_within_5_percent(name: str) -> None:
    # Same limits (M201/M203/M204/M205 in the file) as PrusaSlicer's own estimator.
    result = analyse(DATA / name, load_profile("prusa_mk3s"))
    assert result.time_s == pytest.approx(EXPECTED[name]["time_s"], rel=0.05)


def test_cube_layers_and_bounds() -> None:
    result = analyse(DATA / "cube_xyz_20mm_prusaslicer.gcode.gz", load_profile("prusa_mk3s"))
    assert (result.layers, result.layer_source) == (100, "prusaslicer")
    # Extrusion covers the intro line at Y-3 from X0 to X100, then the cube centred at 100.
    assert result.bounds_min == pytest.approx((0.0, -3.0, 0.2), abs=0.01)
    assert result.bounds_max[2] == pytest.approx(20.0)
    assert 110.0 < result.bounds_max[0] < 115.0
    cura = analyse(DATA / "cube_xyz_20mm_cura.gcode.gz")
    assert (cura.layers, cura.layer_source) == (100, "cura")
    slic3r = analyse(DATA / "cube_xyz_20mm_slic3r.gcode.gz")
    assert (slic3r.layers, slic3r.layer_source) == (100, "z")


def test_material_density_and_profile_diameter_change_grams() -> None:
    pla = analyse(DATA / "cube_xyz_20mm_slic3r.gcode.gz")
    petg = load_materials().get("PETG")
    assert isinstance(petg, FdmMaterial)
    other = analyse(DATA / "cube_xyz_20mm_slic3r.gcode.gz", material=petg)
    assert other.grams == pytest.approx(pla.grams * petg.density_g_cm3 / 1.24)


def test_extrusion_modes_resets_and_firmware_retraction() -> None:
    text = "\n".join([
        "M82", "G92 E0", "G1 X10 E5 F600", "G1 E4", "G1 X20 E9",  # absolute, 1 mm retract
        "G92 E0", "G1 X30 E2",  # Cura's per-layer reset
        "M83", "G1 X40 E3", "G1 E-1", "G1 E1", "G10", "G11",  # relative + firmware retract
        "G1 X50 E1", "G1 E-2",  # final retraction does not count as used
    ])  # fmt: skip
    result = analyse(text)
    assert result.filament_mm == pytest.approx(9 + 2 + 3 + 1)
    area_cm2 = math.pi * 0.0875**2
    assert result.grams == pytest.approx(15 * 0.1 * area_cm2 * 1.24)


def test_relative_moves_offsets_and_arcs() -> None:
    text = "\n".join([
        "G21", "G90", "G1 X10 Y10 Z1 F6000", "G91", "G1 X5 Y-2", "G90",
        "G92 X0 Y0", "G1 X-1 Y1",  # machine (14, 9)
        "G2 X19 Y1 I10 J0 E1",  # clockwise half circle over the top of centre (24, 9), r 10
    ])  # fmt: skip
    result = analyse(text)
    assert result.all_max[:2] == pytest.approx((34.0, 19.0))
    assert result.all_min[:2] == pytest.approx((10.0, 8.0))
    assert result.bounds_min[:2] == pytest.approx((14.0, 9.0))
    assert result.bounds_max[:2] == pytest.approx((34.0, 19.0))
    assert result.cut_mm == pytest.approx(math.pi * 10)
    ccw = analyse(text.replace("G2 ", "G3 "))
    assert ccw.bounds_min[:2] == pytest.approx((14.0, -1.0))


def test_time_estimate_accounts_for_acceleration_and_dwell() -> None:
    # 100 mm at 100 mm/s with 1000 mm/s²: 0.1 s up, 0.1 s down (5 mm each), 90 mm cruise.
    text = "M204 S1000\nM205 X0.001 Y0.001\nG1 X100 F6000\nG4 P500\nG4 S2\n"
    result = analyse(text)
    assert result.time_s == pytest.approx(0.2 + 0.9 + 0.5 + 2.0, rel=0.01)
    # A short move never reaches its feed: 2 mm up, 2 mm down, each sqrt(2 * 2 / a).
    short = analyse("M204 S1000\nM205 X0.001 Y0.001\nG1 X4 F6000\n")
    assert short.time_s == pytest.approx(2 * math.sqrt(4 / 1000), rel=0.01)


def test_klipper_and_cnc_figures() -> None:
    klipper = analyse("PRINT_START BED=100 EXTRUDER=250\nSET_HEATER_TEMPERATURE "
                      "HEATER=heater_bed TARGET=105\n")  # fmt: skip
    assert (klipper.max_hotend_c, klipper.max_bed_c) == (250, 105)
    cnc = analyse("G21 G90\nM3 S18000\nG0 X0 Y0 Z5\nG1 Z-1 F300\nG1 X100 F1500\nG0 Z5\n"
                  "S24000\nM5\n", load_profile("shapeoko3"))  # fmt: skip
    assert cnc.spindle_max_rpm == 24000
    assert cnc.cut_mm == pytest.approx(6 + 100)
    assert cnc.rapid_mm == pytest.approx(5 + 6)
    assert cnc.max_feed_mm_s == pytest.approx(25.0)
    assert cnc.bounds_min == pytest.approx((0.0, 0.0, -1.0))


def test_to_dict_is_json_ready() -> None:
    result = analyse("G1 X1 E1\n")
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) >= {"layers", "filament_mm", "grams", "time_s", "bounds_min", "filament_cm3"}
    assert isinstance(result, Analysis)


def test_live_prusaslicer_cube_matches_its_own_estimate(tmp_path: Path) -> None:
    out = tmp_path / "cube.gcode"
    try:
        subprocess.run(
            ["prusa-slicer", "--export-gcode", "--load", str(DATA / "prusaslicer_mk3s.ini"),
             "--center", "100,100", "-o", str(out), str(MODELS / "cube_xyz_20mm.stl")],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.fail("prusa-slicer is not installed: apt-get install prusa-slicer")
    text = out.read_text()
    own = float(text.split("; filament used [mm] = ", 1)[1].split()[0])
    assert analyse(out, load_profile("prusa_mk3s")).filament_mm == pytest.approx(own, rel=0.03)
