"""Pause with park through a real pty against the simulator: the buffered moves finish, the
head retracts, lifts (within the machine's Z travel) and parks with the heaters kept; resume
returns it to the print in the file's modes, and the file's lines run exactly once, in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from marlin_support import FAST_BAUD, DriverFactory, SimFactory, move_lines, wait_state, write_gcode

from fabnet.drivers.base import DriverState
from fabnet.drivers.marlin_park import ModalState, ParkSettings
from fabnet.drivers.registry import profile_options
from fabnet.errors import Conflict
from fabnet.profiles import load_profile

DONE = {DriverState.DONE, DriverState.ERROR}
PARK = ParkSettings(lift_mm=5.0, x_mm=10.0, y_mm=200.0, retract_mm=0.8, retract_feed_mm_min=2100)


def _xy(command: str) -> tuple[float, float]:
    words = {w[0]: float(w[1:]) for w in command.split()[1:]}
    return words["X"], words["Y"]


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize(("z_mm", "max_z_mm", "lift"), [(0.3, None, "5.00"), (10.0, 12.0, "2.00")])
def test_pause_parks_and_resume_restores_the_print(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    z_mm: float,
    max_z_mm: float | None,
    lift: str,
) -> None:
    commands = move_lines(1000, z_mm=z_mm)  # ends its head with G90, M83, feed F6000 moves
    gcode = write_gcode(tmp_path / "moves.gcode", commands)
    sim = marlin_sim(baud=FAST_BAUD)
    driver = marlin_driver(sim, park=PARK, max_z_mm=max_z_mm)
    mark = len(sim.executed)
    driver.start(gcode)
    _wait(lambda: driver.status().progress.lines_done >= 200, "200 lines")
    driver.pause()
    assert driver.state == DriverState.PAUSED
    with pytest.raises(Conflict):
        driver.start(gcode)
    _wait(lambda: sim.snapshot()["x"] == 10.0 and sim.snapshot()["y"] == 200.0, "the park")
    parked = sim.snapshot()
    assert (parked["hotend_target_c"], parked["bed_target_c"]) == (200.0, 60.0), "heaters kept"
    assert parked["z"] == pytest.approx(z_mm + float(lift))
    driver.resume()
    assert wait_state(driver, DONE) == DriverState.DONE
    ran = sim.executed[mark:]
    stop = ran.index("G4 P0")  # the pause's: the file has none
    k = stop - 1  # the file's lines before the pause
    x, y = _xy(commands[k - 1])
    assert ran[:stop] == ["M110 N0", *commands[:k]]
    assert (
        ran[stop:]
        == [
            "G4 P0",
            "M114",
            "G91",
            "G1 E-0.80 F2100",
            f"G1 Z{lift} F600",
            "G90",
            "G1 X10.00 Y200.00 F3000",
            "G90",
            f"G1 X{x:.3f} Y{y:.3f} F3000",
            f"G1 Z{z_mm:.3f} F600",
            "G91",
            "G1 E0.80 F2100",
            "G90",  # the file's modes: absolute XYZ, relative E (M83), and its feed
            "M83",
            "G1 F6000",
            *commands[k:],
            "M400",
        ]
    )
    done = sim.snapshot()
    assert done["e"] == pytest.approx(0.05 * 1000), "E continued relative, as the file had it"
    assert sim.state()["files_completed"] == 1, "a paused and resumed file ends once"
    assert (done["hotend_target_c"], done["bed_target_c"]) == (200.0, 60.0)


def test_cancel_while_parked_leaves_the_machine_safe(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    gcode = write_gcode(tmp_path / "moves.gcode", move_lines(1000))
    sim = marlin_sim(baud=FAST_BAUD)
    driver = marlin_driver(sim, park=PARK)
    driver.start(gcode)
    _wait(lambda: driver.status().progress.lines_done >= 100, "100 lines")
    driver.pause()
    _wait(lambda: sim.snapshot()["y"] == 200.0, "the park")
    driver.cancel()
    assert driver.state == DriverState.IDLE
    snap = sim.snapshot()
    assert (snap["hotend_target_c"], snap["bed_target_c"], snap["steppers_on"]) == (0, 0, 0)


def test_modes_follow_the_lines_sent() -> None:
    modes = ModalState()
    for cmd in ["G91", "M82", "G1 X1 F1200", "G0 Y2", "G90", "M83", "G1 E1 F300"]:
        modes.follow(cmd)
    assert (modes.xyz_relative, modes.e_relative, modes.feed_mm_min) == (False, True, 300.0)


def test_a_printer_profile_gives_the_marlin_driver_its_limits_and_park() -> None:
    profile = load_profile("prusa_mk3s")
    options = profile_options("marlin", profile)
    thermal, park = options["thermal"], options["park"]
    assert (thermal.hotend_max_c, thermal.bed_max_c) == (300, 120)
    assert (thermal.margin_c, thermal.margin_s) == (15, 60)
    assert options["max_z_mm"] == 210
    assert (park.x_mm, park.y_mm, park.lift_mm, park.retract_mm) == (10, 200, 5, 0.8)
    assert profile_options("grbl", load_profile("shapeoko3")) == {}
