"""Injected firmware faults: recovered exactly once where the protocol allows it (corrupt lines,
lost oks, long busy spells), reported and stopped where it does not (silence, reset, halt)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from marlin_support import FAST_BAUD, DriverFactory, SimFactory, move_lines, wait_state, write_gcode

from fabnet.drivers.base import DriverState
from fabnet.sim.marlin_faults import HALT_LINE, RUNAWAY_LINE, FaultPlan

DONE = {DriverState.DONE, DriverState.ERROR}
COMMANDS = move_lines(400)
LAST = len(COMMANDS)


@pytest.mark.parametrize(
    ("specs", "advanced_ok"),
    [
        (["corrupt:10"], True),
        (["corrupt:11", "corrupt:12", "corrupt:300"], True),
        (["drop-ok:50", "drop-ok:51"], True),
        ([f"drop-ok:{LAST}"], True),
        (["corrupt:20", "drop-ok:21", "corrupt:22"], False),
        ([f"drop-ok:{LAST - 1}", "corrupt:100"], False),
    ],
)
def test_recovers_and_runs_every_line_exactly_once(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    specs: list[str],
    advanced_ok: bool,
) -> None:
    gcode = write_gcode(tmp_path / "moves.gcode", COMMANDS)
    sim = marlin_sim(FaultPlan.parse(specs), baud=FAST_BAUD, advanced_ok=advanced_ok)
    driver = marlin_driver(sim, ok_timeout_s=0.5)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.DONE, driver.status().error
    assert sim.executed[mark:] == ["M110 N0", *COMMANDS, "M400"]
    assert driver.status().progress.lines_done == LAST


def test_busy_extends_the_timeout(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gcode = write_gcode(tmp_path / "moves.gcode", COMMANDS)
    sim = marlin_sim(FaultPlan(busy_s={40: 1.0}), baud=FAST_BAUD, busy_interval_s=0.2)
    driver = marlin_driver(sim, ok_timeout_s=0.5)
    mark = len(sim.executed)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="fabnet.drivers.marlin_protocol"):
        driver.start(gcode)
        assert wait_state(driver, DONE) == DriverState.DONE, driver.status().error
    assert time.monotonic() - started >= 1.0
    assert not [r for r in caplog.records if "no ok" in r.getMessage()], "busy is not silence"
    assert sim.executed[mark:] == ["M110 N0", *COMMANDS, "M400"]


def test_silence_ends_in_device_timeout_after_bounded_retries(
    tmp_path: Path, marlin_sim: SimFactory, marlin_driver: DriverFactory
) -> None:
    gcode = write_gcode(tmp_path / "moves.gcode", COMMANDS)
    sim = marlin_sim(FaultPlan(silent_at=150), baud=FAST_BAUD)
    driver = marlin_driver(sim, ok_timeout_s=0.3, max_retries=2)
    mark = len(sim.executed)
    started = time.monotonic()
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.ERROR
    assert time.monotonic() - started < 0.3 * 3 + 2.0
    status = driver.status()
    assert status.error is not None and "no ok" in status.error.message
    ran = sim.executed[mark + 1 :]  # the board hangs on receipt of N150: queued lines stay
    assert 140 <= len(ran) <= 149 and ran == COMMANDS[: len(ran)]


@pytest.mark.parametrize(
    ("plan", "raw", "ran"),
    [
        (FaultPlan(reset_at=120), "start", range(110, 120)),  # queued lines die with the reset
        (FaultPlan(halt_at=80), HALT_LINE, range(80, 81)),
        (FaultPlan(thermal={30: "runaway"}), RUNAWAY_LINE, range(30, 31)),
    ],
)
def test_reset_and_halt_stop_the_job_with_the_raw_line(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    plan: FaultPlan,
    raw: str,
    ran: range,
) -> None:
    gcode = write_gcode(tmp_path / "moves.gcode", COMMANDS)
    sim = marlin_sim(plan, baud=FAST_BAUD)
    driver = marlin_driver(sim)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.ERROR
    status = driver.status()
    assert status.error is not None and status.error.raw == raw
    time.sleep(0.3)  # nothing more may run: never resume blind after a reset
    executed = sim.executed[mark + 1 :]
    assert len(executed) in ran and executed == COMMANDS[: len(executed)]
