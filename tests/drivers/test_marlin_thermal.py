"""The driver's watch on the heaters while printing: a heater that falls too far below its
target for too long, or rises above the profile's maximum, stops the print safely (heaters
off) and fails it with the reason. Through a real pty against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from marlin_support import DriverFactory, SimFactory, move_lines, wait_state, write_gcode

from fabnet.drivers.base import DriverState
from fabnet.drivers.marlin_job import ThermalLimits, ThermalWatch
from fabnet.sim.marlin_faults import FaultPlan

DONE = {DriverState.DONE, DriverState.ERROR}
SAFE = ["M104 S0", "M140 S0", "M107", "M114"]


@pytest.mark.parametrize(
    ("plan", "limits", "reason"),
    [
        (
            FaultPlan(heater_off_at=600),
            ThermalLimits(margin_c=15, margin_s=1.5),
            "below its target",
        ),
        (FaultPlan(), ThermalLimits(hotend_max_c=190), "above the profile's maximum 190"),
    ],
    ids=["heater-lost", "over-maximum"],
)
def test_a_heater_out_of_limits_stops_the_print_and_fails_it(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    plan: FaultPlan,
    limits: ThermalLimits,
    reason: str,
) -> None:
    commands = move_lines(3000)
    gcode = write_gcode(tmp_path / "moves.gcode", commands)
    sim = marlin_sim(plan, baud=250000, speed=20.0)  # slow moves: the print lasts seconds
    driver = marlin_driver(sim, thermal=limits, autoreport_s=1)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE, 60.0) == DriverState.ERROR
    error = driver.status().error
    assert error is not None and reason in error.message, error
    assert error.raw is not None and "T:" in error.raw, "the reading that tripped it is kept"
    ran = [cmd for cmd in sim.executed[mark + 1 :] if cmd not in ("M108", "M410")]
    stop = ran.index("M104 S0")
    assert ran[:stop] == commands[:stop] and stop < len(commands)
    assert ran[stop : stop + 4] == SAFE
    snap = sim.snapshot()
    assert snap["hotend_target_c"] == 0.0 and snap["bed_target_c"] == 0.0


def test_heating_up_is_not_a_fault_but_a_drop_after_reaching_is() -> None:
    watch = ThermalWatch(ThermalLimits(margin_c=10, margin_s=5))
    assert watch.check("T", 25.0, 200.0, now=0.0) is None  # far below, never reached yet
    assert watch.check("T", 199.0, 200.0, now=10.0) is None  # reached
    assert watch.check("T", 180.0, 200.0, now=11.0) is None  # below: the clock starts
    assert watch.check("T", 195.0, 200.0, now=12.0) is None  # back: the clock stops
    assert watch.check("T", 180.0, 200.0, now=13.0) is None
    reason = watch.check("T", 170.0, 200.0, now=18.5)
    assert reason is not None and "hotend" in reason
    assert watch.check("B", 40.0, 60.0, now=20.0) is None  # the bed has its own record
    assert watch.check("T", 25.0, 0.0, now=30.0) is None  # heater off: nothing to watch
