"""Each safety rule on a crafted snippet, and real slicer output passing for its machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fabnet.errors import SafetyError
from fabnet.gcode import Violation, assert_safe, check
from fabnet.gcode.cli import gcode
from fabnet.gcode.safety import Rule
from fabnet.profiles import load_profile

DATA = Path(__file__).parents[1] / "data" / "gcode"
MK3S = load_profile("prusa_mk3s")
SHAPEOKO = load_profile("shapeoko3")
VORON = load_profile("voron24_350")


def rules(text: str, profile: object = MK3S) -> list[tuple[int, str]]:
    return [(v.line_no, str(v.rule)) for v in check(text, profile)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("G1 X251 Y10 F3000", [(2, "out-of-bounds")]),
        ("G1 X10 Y-3 F1000\nG1 X60 Y-3 E9", []),  # Prusa's purge line
        ("G1 X10 Y-6 F1000", [(2, "out-of-bounds")]),
        ("G1 Z211", [(2, "out-of-bounds")]),
        ("G1 Z-0.5", [(2, "out-of-bounds")]),
        ("G1 X200\nG91\nG1 X40\nG1 X40\nG90", [(5, "out-of-bounds")]),
        ("G1 X200\nG92 X0\nG1 X60", [(4, "out-of-bounds")]),
        ("G20\nG1 X10", [(3, "out-of-bounds")]),  # 254 mm
        ("G1 X100 Y100\nG2 X100 Y100 I0 J60", [(3, "out-of-bounds")]),  # circle to Y 220
        ("M104 S301", [(2, "over-temperature")]),
        ("M109 R305", [(2, "over-temperature")]),
        ("M140 S121\nM190 S60", [(2, "over-temperature")]),
        ("G1 X10 F30000", [(2, "over-feed")]),
        ("G1 Z5 F10800", []),  # Z clamped by firmware; PrusaSlicer relies on it
        ("M203 X400 Y200", [(2, "over-feed")]),
        ("M203 X100 Y100 Z5", []),  # lowering limits is fine
        ("M201 X5000", [(2, "over-accel")]),
        ("M500", [(2, "forbidden-command")]),
        ("M303 E0 S210 C8", [(2, "forbidden-command")]),
        ("M92 E280 ; new steps", [(2, "forbidden-command")]),
        ("m997", [(2, "forbidden-command")]),
        ("$110=5000", [(2, "settings-write"), (2, "wrong-machine-kind")]),
        ("M3 S12000", [(2, "wrong-machine-kind")]),
        ("G1 X10\nN5 M502*12", [(3, "forbidden-command")]),
    ],
)
def test_fdm_rules(snippet: str, expected: list[tuple[int, str]]) -> None:
    assert rules("G28\n" + snippet) == expected


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("$H\n$X\n$$\nG0 X10 Y10 Z5\nG1 Z-6 F300\nM3 S18000", []),
        ("$110=8000", [(1, "settings-write")]),
        ("$RST=*", [(1, "forbidden-command"), (1, "settings-write")]),
        ("$N0=G20", [(1, "forbidden-command"), (1, "settings-write")]),
        ("M3 S31000", [(1, "over-spindle")]),
        ("M3\nS40000", [(2, "over-spindle")]),
        ("M104 S200", [(1, "wrong-machine-kind")]),
        ("G1 X10 E2 F300", [(1, "wrong-machine-kind")]),
        ("G10 L20 P1 X0", [(1, "forbidden-command"), (1, "wrong-machine-kind")]),
        ("G28.1", [(1, "forbidden-command")]),
        ("G0 X430", [(1, "out-of-bounds")]),
        ("G1 X10 F9000", [(1, "over-feed")]),
        ("G53 G0 Z-5", []),  # machine coordinates: GRBL's negative space
    ],
)
def test_cnc_rules(snippet: str, expected: list[tuple[int, str]]) -> None:
    assert rules(snippet, SHAPEOKO) == expected


def test_klipper_rules() -> None:
    text = ("PRINT_START BED=130 EXTRUDER=240\nSET_HEATER_TEMPERATURE HEATER=extruder TARGET=290\n"
            "SET_HEATER_TEMPERATURE HEATER=heater_bed TARGET=100\nSAVE_CONFIG\n"
            "firmware_restart\n")  # fmt: skip
    assert rules(text, VORON) == [
        (1, "over-temperature"), (2, "over-temperature"), (4, "forbidden-command"),
        (5, "forbidden-command"),
    ]  # fmt: skip


def test_violation_carries_line_and_message() -> None:
    (v,) = check("G28\n\n; c\nM104 S400 ; hot\n", MK3S)
    assert v == Violation(4, "M104 S400 ; hot", Rule.OVER_TEMPERATURE,
                          "hotend 400 °C over max 300 °C")  # fmt: skip


def test_assert_safe_raises_with_violations() -> None:
    with pytest.raises(SafetyError) as err:
        assert_safe("M104 S400\nM500\n", MK3S)
    assert len(err.value.violations) == 2
    assert "line 1" in str(err.value)
    assert_safe("G28\nG1 X10 Y10 F3000\n", MK3S)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.gcode.gz")))
def test_real_slicer_output_passes_for_its_machine(name: str) -> None:
    profile = load_profile("creality_ender3" if "_cura" in name else "prusa_mk3s")
    assert check(DATA / name, profile) == []


def test_cli_check_and_analyse(tmp_path: Path) -> None:
    runner = CliRunner()
    good = DATA / "cube_xyz_20mm_slic3r.gcode.gz"
    ok = runner.invoke(gcode, ["check", str(good), "--profile", "prusa_mk3s"])
    assert ok.exit_code == 0 and ok.output.startswith("ok: ")
    bad = tmp_path / "bad.gcode"
    bad.write_text("G28\nM104 S400\n")
    out = runner.invoke(gcode, ["check", str(bad), "--profile", "prusa_mk3s"])
    assert out.exit_code == 1
    assert out.output == "line 2: over-temperature: hotend 400 °C over max 300 °C  | M104 S400\n"
    js = runner.invoke(gcode, ["analyse", str(good), "--material", "PLA", "--json"])
    assert js.exit_code == 0 and '"layers": 100' in js.output
