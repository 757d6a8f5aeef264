"""``fabnet slice`` end to end: the real console entry point in a subprocess, real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fabnet.gcode import check
from fabnet.profiles import load_profile

MODELS = Path(__file__).resolve().parent.parent / "data" / "models"


def _fabnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fabnet.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_slice_writes_checked_gcode_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "cube.gcode"
    done = _fabnet(
        "slice", str(MODELS / "cube_xyz_20mm.stl"), "--profile", "prusa_mk3s",
        "--material", "PLA", "--quantity", "2", "--infill", "15", "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "mesh: merged" in done.stderr  # the repair notes are shown
    assert "100 layers" in done.stdout and " g, " in done.stdout and "EUR of PLA" in done.stdout
    assert check(out.read_text(), load_profile("prusa_mk3s")) == []


def test_cnc_profile_gets_toolpaths(tmp_path: Path) -> None:
    out = tmp_path / "frame.nc"
    done = _fabnet(
        "slice", str(MODELS / "faceshield_frame.stl"), "--profile", "shapeoko3",
        "--material", "mdf", "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cnc: 7 passes" in done.stderr and "m of cuts in mdf" in done.stdout
    assert "M3 S18000" in out.read_text()


def test_refusals_exit_2_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.gcode"
    broken = _fabnet(
        "slice", str(MODELS / "conveyor_broken_x0.1.stl"), "--profile", "prusa_mk3s",
        "--material", "PLA", "-o", str(out),
    )  # fmt: skip
    assert broken.returncode == 2 and "error: not watertight" in broken.stderr
    wrong_kind = _fabnet(
        "slice", str(MODELS / "cube_xyz_20mm.stl"), "--profile", "prusa_mk3s",
        "--material", "plywood", "-o", str(out),
    )  # fmt: skip
    assert wrong_kind.returncode == 2 and "plywood is for cnc machines" in wrong_kind.stderr
    assert not out.exists()


def test_external_slicer_by_name(tmp_path: Path) -> None:
    out = tmp_path / "cube.gcode"
    done = _fabnet(
        "slice", str(MODELS / "cube_xyz_20mm.stl"), "--profile", "prusa_mk3s",
        "--material", "PLA", "--slicer", "prusaslicer", "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert check(out.read_text(), load_profile("prusa_mk3s")) == []
