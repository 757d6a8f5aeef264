"""The Marlin driver against the Marlin simulator through a real pty: whole files exactly once,
progress, telemetry and cancel into a safe state (pause/resume: test_marlin_park)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from marlin_support import (
    FAST_BAUD,
    DriverFactory,
    SimFactory,
    move_lines,
    slicer_head,
    wait_state,
    write_gcode,
)

from fabnet.drivers.base import DriverState
from fabnet.errors import Conflict

DONE = {DriverState.DONE, DriverState.ERROR}


def test_streams_2000_lines_at_115200_exactly_once(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    commands = move_lines(2000)
    gcode = write_gcode(tmp_path / "moves.gcode", commands)
    sim = marlin_sim(baud=115200)
    driver = marlin_driver(sim)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE, 40.0) == DriverState.DONE, driver.status().error
    assert sim.executed[mark:] == ["M110 N0", *commands, "M400"]
    status = driver.status()
    assert status.progress.lines_done == status.progress.lines_total == len(commands)
    assert status.progress.percent == 100.0
    assert status.telemetry.hotend_c is not None and status.telemetry.hotend_c[1] == 200.0
    wire_bytes = sum(len(c) + 1 for c in commands)
    rate = wire_bytes / status.progress.elapsed_s
    assert rate < 11520, "the link must be paced at 115200 baud"


def test_real_slicer_output_exactly_once(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    commands = slicer_head("cube_xyz_20mm_prusaslicer.gcode.gz", 2500)
    gcode = write_gcode(tmp_path / "cube.gcode", commands)
    sim = marlin_sim(baud=FAST_BAUD, ack_latency_s=0.0002)
    driver = marlin_driver(sim)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.DONE, driver.status().error
    assert sim.executed[mark:] == ["M110 N0", *commands, "M400"]


def test_without_advanced_ok_counts_oks(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    commands = move_lines(400)
    gcode = write_gcode(tmp_path / "moves.gcode", commands)
    sim = marlin_sim(baud=FAST_BAUD, advanced_ok=False, ack_latency_s=0.0002)
    driver = marlin_driver(sim)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.DONE, driver.status().error
    assert sim.executed[mark:] == ["M110 N0", *commands, "M400"]


@pytest.mark.parametrize(("max_z_mm", "lift_mm"), [(None, 5.0), (12.0, 2.0)])
def test_cancel_leaves_the_machine_safe(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    max_z_mm: float | None,
    lift_mm: float,
) -> None:
    commands = move_lines(3000, z_mm=10.0, wait_heat=False)
    gcode = write_gcode(tmp_path / "moves.gcode", commands)
    sim = marlin_sim(baud=FAST_BAUD, speed=20.0)  # slow moves: the planner fills
    driver = marlin_driver(sim, max_z_mm=max_z_mm)
    mark = len(sim.executed)
    driver.start(gcode)
    while driver.status().progress.lines_done < 100:
        time.sleep(0.01)
    assert sim.snapshot()["fan"] == 255.0
    driver.cancel()
    assert driver.state == DriverState.IDLE
    ran = sim.executed[mark + 1 :]
    # the simulated Marlin reports EMERGENCY_PARSER: the cancel breaks waits at once
    assert ran.count("M108") == 1 and ran.count("M410") == 1
    ran = [cmd for cmd in ran if cmd not in ("M108", "M410")]
    sent = ran.index("M104 S0")
    assert 100 <= sent < len(commands)
    assert ran[:sent] == commands[:sent], "the file's prefix ran exactly once, in order"
    assert ran[sent:] == [
        "M104 S0",
        "M140 S0",
        "M107",
        "M114",
        "G91",
        f"G1 Z{lift_mm:.2f} F600",
        "G90",
        "M84",
    ]
    snap = sim.snapshot()
    assert snap["hotend_target_c"] == 0.0 and snap["bed_target_c"] == 0.0
    assert snap["fan"] == 0.0 and snap["steppers_on"] == 0.0
    assert snap["z"] == pytest.approx(10.0 + lift_mm)


def test_start_needs_a_connection_and_an_idle_machine(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    from fabnet.drivers.marlin import MarlinDriver

    gcode = write_gcode(tmp_path / "moves.gcode", move_lines(10))
    sim = marlin_sim(baud=FAST_BAUD)
    with pytest.raises(Conflict):
        MarlinDriver(sim.path).start(gcode)
    driver = marlin_driver(sim)
    driver.start(gcode)
    with pytest.raises(Conflict):
        driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.DONE
    driver.start(gcode)  # DONE -> a new job may start
    assert wait_state(driver, DONE) == DriverState.DONE
