"""``fabnet print`` stopped by SIGTERM mid-print leaves the printer as Ctrl-C does: job
cancelled, heater targets 0. Both sides are real processes; the simulator's state file shows
the printer from outside."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from marlin_support import move_lines, write_gcode
from test_marlin_state_file import wait_for_state

FABNET = [sys.executable, "-m", "fabnet.cli"]
BAUD = "1000000"


@pytest.fixture
def sim_with_state(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    state_file = tmp_path / "state.json"
    proc = subprocess.Popen(
        [*FABNET, "sim", "marlin", "--speed", "20", "--baud", BAUD, "--state-file",
         str(state_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    assert path.startswith("/dev/"), path
    yield path, state_file
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def test_sigterm_mid_print_cancels_and_turns_the_heaters_off(
    tmp_path: Path, sim_with_state: tuple[str, Path]
) -> None:
    path, state_file = sim_with_state
    gcode = write_gcode(tmp_path / "long.gcode", move_lines(3000, z_mm=10.0, wait_heat=False))
    printing = subprocess.Popen(
        [*FABNET, "print", str(gcode), "--driver", "marlin", "--port", path, "--baud", BAUD,
         "--profile", "prusa_mk3s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_state(
            state_file, lambda s: s["hotend_target_c"] == 200 and s["lines_executed"] > 50, 60
        )
        printing.send_signal(signal.SIGTERM)
        _, err = printing.communicate(timeout=90)
    finally:
        if printing.poll() is None:
            printing.kill()
    assert printing.returncode == 128 + signal.SIGTERM, err
    assert "machine left safe" in err
    state = wait_for_state(
        state_file, lambda s: s["hotend_target_c"] == 0 and s["bed_target_c"] == 0 and not s["busy"]
    )
    assert state["files_completed"] == 0 and not state["steppers_on"]
