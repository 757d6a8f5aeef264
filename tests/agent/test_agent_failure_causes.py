"""Each way a print ends badly reaches the hub as its own reason code (issue 10, item 4): the
real Marlin driver on a pty against the simulator, a fault injected mid-print, and the agent's
``task.failed`` carries the cause it read from the driver's error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agent_harness import assign, cube_gcode, machine_toml, new_id
from agent_rig import RigFactory

from fabnet.agent.reports import failure_cause
from fabnet.bus.messages import FailureCause, TaskFailed
from fabnet.drivers.base import DriverError, DriverState
from fabnet.drivers.marlin import MarlinDriver
from fabnet.sim.marlin import MarlinSimulator
from fabnet.sim.marlin_faults import FaultPlan

SIM_BAUD = 1_000_000
FAULT_LINE = 300  # after the start G-code's heat-up waits


@pytest.fixture
def marlin_sim() -> Iterator[list[MarlinSimulator]]:
    sims: list[MarlinSimulator] = []
    yield sims
    for sim in sims:
        sim.close()


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (FaultPlan(thermal={FAULT_LINE: "runaway"}), FailureCause.THERMAL_FAULT),
        (FaultPlan(thermal={FAULT_LINE: "mintemp"}), FailureCause.THERMAL_FAULT),
        (FaultPlan(halt_at=FAULT_LINE), FailureCause.FIRMWARE_FAULT),
        (FaultPlan(reset_at=FAULT_LINE), FailureCause.MACHINE_RESET),
        (FaultPlan(silent_at=FAULT_LINE), FailureCause.LINK_LOST),
    ],
    ids=["runaway", "mintemp", "halt", "reset", "silent"],
)
def test_a_fault_mid_print_fails_the_task_with_its_cause(
    make_rig: RigFactory, marlin_sim: list[MarlinSimulator], fault: FaultPlan, cause: FailureCause
) -> None:
    sim = MarlinSimulator(baud=SIM_BAUD, speed=50.0, faults=fault)
    marlin_sim.append(sim)
    driver = MarlinDriver(sim.start(), SIM_BAUD, ok_timeout_s=1.0, max_retries=1)
    rig = make_rig(machine_toml("m"), drivers={"m": driver})
    body = cube_gcode()
    task = new_id()
    rig.hub.send(assign("m", task, rig.artifacts.add(f"{task}.gcode", body), body))
    failed = rig.hub.wait_for(TaskFailed, timeout_s=60.0, task_id=task)
    assert failed.cause is cause, (failed.reason, failed.raw)


def test_a_file_the_agent_refuses_fails_as_refused(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("m"))
    body = cube_gcode()
    task = new_id()
    url = rig.artifacts.add(f"{task}.gcode", body)
    rig.hub.send(assign("m", task, url, body, sha256="0" * 64))  # not the file's
    failed = rig.hub.wait_for(TaskFailed, task_id=task)
    assert failed.cause is FailureCause.REFUSED, failed.reason


@pytest.mark.parametrize(
    ("error", "state", "cause"),
    [
        (None, DriverState.IDLE, FailureCause.CANCELLED_BY_MAKER),
        (None, DriverState.DISCONNECTED, FailureCause.LINK_LOST),
        (
            DriverError("Offline after error", "MINTEMP triggered, system stopped! Heater_ID: 0"),
            DriverState.DISCONNECTED,
            FailureCause.THERMAL_FAULT,
        ),
        (
            DriverError("Offline after error", "Printer halted. kill() called!"),
            DriverState.DISCONNECTED,
            FailureCause.FIRMWARE_FAULT,
        ),
        (
            DriverError("GRBL raised ALARM:3 (Reset while in motion)", "ALARM:3"),
            DriverState.ERROR,
            FailureCause.MACHINE_RESET,
        ),
        (
            DriverError("GRBL error:20 (unsupported command) on line 4: G5", "error:20"),
            DriverState.ERROR,
            FailureCause.FIRMWARE_FAULT,
        ),
        (
            DriverError("marlin: thermal fault: hotend at 310.0 °C is above the profile's maximum"),
            DriverState.ERROR,
            FailureCause.THERMAL_FAULT,
        ),
        (
            DriverError("reading /dev/ttyUSB0 failed: device reports readiness to read"),
            DriverState.ERROR,
            FailureCause.LINK_LOST,
        ),
    ],  # fmt: skip
)
def test_failure_cause_reads_the_drivers_words(
    error: DriverError | None, state: DriverState, cause: FailureCause
) -> None:
    assert failure_cause(error, state) is cause
