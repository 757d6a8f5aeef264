"""The simulator's state file seen from outside, as an agent's or ``fabnet print``'s test sees
it: targets, lines, and files counted complete only when the driver ran them to the end (its
M400), never when it cancelled them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from marlin_support import FAST_BAUD, DriverFactory, SimFactory, move_lines, write_gcode

from fabnet.drivers.base import DriverState
from fabnet.sim.marlin_state import read_state

FIELDS = {
    "hotend_c", "hotend_target_c", "bed_c", "bed_target_c", "fan", "steppers_on",
    "lines_executed", "files_completed", "busy", "halted", "updated_at",
}  # fmt: skip


def wait_for_state(path: Path, check: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    """Poll the state file until ``check(state)``; AssertionError with the last state if not."""
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if path.exists():
            state = read_state(path)
            if check(state):
                return state
        time.sleep(0.05)
    raise AssertionError(f"state never matched; last: {json.dumps(state)}")


def test_a_finished_file_counts_once_and_its_heaters_show(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    state_file = tmp_path / "sim" / "state.json"
    sim = marlin_sim(baud=FAST_BAUD, state_file=state_file)
    first = read_state(state_file)
    assert set(first) == FIELDS and first["files_completed"] == 0
    driver = marlin_driver(sim)
    commands = [*move_lines(40, wait_heat=False), "M104 S0", "M140 S0", "M84"]
    gcode = write_gcode(tmp_path / "part.gcode", commands)
    for _ in range(2):
        driver.start(gcode)
        wait_for_state(state_file, lambda s: s["hotend_target_c"] == 200.0 or s["busy"])
        while driver.state is DriverState.RUNNING:
            time.sleep(0.02)
        assert driver.state is DriverState.DONE
    state = wait_for_state(state_file, lambda s: s["files_completed"] == 2)
    assert state["hotend_target_c"] == 0.0 and state["bed_target_c"] == 0.0
    assert state["lines_executed"] == len(sim.executed) >= 2 * len(commands)
    assert not state["halted"] and not state["steppers_on"]


def test_a_cancelled_file_does_not_count_and_ends_with_heaters_off(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    state_file = tmp_path / "state.json"
    sim = marlin_sim(baud=FAST_BAUD, speed=20.0, state_file=state_file)
    driver = marlin_driver(sim)
    gcode = write_gcode(tmp_path / "long.gcode", move_lines(3000, wait_heat=False))
    driver.start(gcode)
    wait_for_state(state_file, lambda s: s["hotend_target_c"] == 200.0 and s["bed_target_c"] > 0)
    driver.cancel()
    state = wait_for_state(
        state_file, lambda s: s["hotend_target_c"] == 0 and s["bed_target_c"] == 0 and not s["busy"]
    )
    assert state["files_completed"] == 0
