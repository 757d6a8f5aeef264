"""Tasks that must not run or do not finish: unsafe or corrupted files, cancel, pause, a
firmware error. The machine is a SimDriver the test can inspect."""

from __future__ import annotations

import time
from pathlib import Path

from agent_harness import assign, cube_gcode, machine_toml, new_id, offer
from agent_rig import RigFactory

from fabnet.bus.messages import (
    MachineState,
    MachineStatus,
    TaskAccepted,
    TaskCancel,
    TaskCompleted,
    TaskDeclined,
    TaskFailed,
    TaskPause,
    TaskProgress,
    TaskResume,
    TaskStarted,
)
from fabnet.drivers.base import DriverState
from fabnet.drivers.sim import SimDriver
from fabnet.errors import DeviceError

UNSAFE = b"G28\nG1 Z5 F600\nM104 S400\nM500\nG1 X10 Y10 F3000\n"


class CountingSim(SimDriver):
    """The sim driver, counting how often a job was started on it."""

    def __init__(self, **options: float) -> None:
        super().__init__(**options)
        self.starts = 0

    def start(self, gcode_file: Path) -> None:
        self.starts += 1
        super().start(gcode_file)


def test_unsafe_gcode_fails_naming_the_lines_and_never_starts_the_machine(
    make_rig: RigFactory,
) -> None:
    sim = CountingSim()
    rig = make_rig(machine_toml("m"), drivers={"m": sim})
    task = new_id()
    rig.hub.send(assign("m", task, rig.artifacts.add(f"{task}.gcode", UNSAFE), UNSAFE))
    failed = rig.hub.wait_for(TaskFailed, task_id=task)
    assert failed.reason.startswith("unsafe G-code for prusa_mk3s: line 3: M104 S400")
    assert "line 4: M500" in failed.reason
    assert sim.starts == 0 and sim.status().state is DriverState.IDLE
    assert not rig.hub.messages(TaskStarted, task_id=task)
    assert not list((rig.config.data_dir / "work" / "m").glob("*.gcode"))


def test_sha256_mismatch_fails_before_the_machine_is_touched(make_rig: RigFactory) -> None:
    sim = CountingSim()
    rig = make_rig(machine_toml("m"), drivers={"m": sim})
    body = cube_gcode()
    task = new_id()
    url = rig.artifacts.add(f"{task}.gcode", body)
    rig.hub.send(assign("m", task, url, body, sha256="0" * 64))
    failed = rig.hub.wait_for(TaskFailed, task_id=task)
    assert failed.reason.startswith("artifact sha256 mismatch")
    assert sim.starts == 0
    # a wrong token is refused by the hub's server: a failure too, and only one request
    other = new_id()
    bad = assign("m", other, rig.artifacts.add(f"{other}.gcode", body), body)
    rig.hub.send(bad.__class__(**{**bad.__dict__, "token": "wrong-token-0123456789"}))
    failed = rig.hub.wait_for(TaskFailed, task_id=other)
    assert "HTTP 403" in failed.reason
    assert sum(other in r for r in rig.artifacts.requests) == 1
    assert sim.starts == 0


def test_cancel_mid_task_leaves_the_machine_idle_and_safe(make_rig: RigFactory) -> None:
    sim = CountingSim(speed=100.0)  # ~13 s of work: it is cancelled long before
    rig = make_rig(machine_toml("m"), drivers={"m": sim})
    body = cube_gcode()
    task = new_id()
    rig.hub.send(offer("m", task))
    rig.hub.wait_for(TaskAccepted, task_id=task)
    rig.hub.send(assign("m", task, rig.artifacts.add(f"{task}.gcode", body), body))
    rig.hub.wait_for(TaskProgress, task_id=task, where=lambda p: p.percent > 0)
    assert sim.status().telemetry.hotend_c == (215.0, 215.0)

    rig.hub.send(TaskPause(machine="m", task_id=task, attempt=1))
    rig.hub.wait_for(MachineStatus, state=MachineState.PAUSED, task_id=task)
    rig.hub.send(TaskResume(machine="m", task_id=task, attempt=1))
    rig.hub.wait_for(MachineStatus, where=lambda m: m.state is MachineState.BUSY and
                     m.ts > rig.hub.messages(MachineStatus, state=MachineState.PAUSED)[0].ts)  # fmt: skip
    rig.hub.send(TaskCancel(machine="m", task_id=task, attempt=1))
    idle = rig.hub.wait_for(MachineStatus, where=lambda m: m.state is MachineState.IDLE and
                            m.ts > rig.hub.messages(TaskStarted, task_id=task)[0].ts)  # fmt: skip
    assert idle.task_id is None
    status = sim.status()
    assert status.state is DriverState.IDLE
    assert status.telemetry.hotend_c is not None and status.telemetry.hotend_c[1] == 0.0
    assert status.telemetry.bed_c is not None and status.telemetry.bed_c[1] == 0.0
    time.sleep(0.5)
    assert not rig.hub.messages(TaskCompleted, task_id=task)
    assert not rig.hub.messages(TaskFailed, task_id=task)


def test_firmware_error_fails_the_task_with_the_raw_line(make_rig: RigFactory) -> None:
    sim = CountingSim(speed=1500.0, fail_at_percent=40.0)
    rig = make_rig(machine_toml("m"), drivers={"m": sim})
    body = cube_gcode()
    task = new_id()
    rig.hub.send(assign("m", task, rig.artifacts.add(f"{task}.gcode", body), body))
    failed = rig.hub.wait_for(TaskFailed, task_id=task)
    assert failed.raw == "Error:Thermal Runaway, system stopped! Heater_ID: 0"
    assert failed.reason == "simulated firmware error"
    rig.hub.wait_for(MachineStatus, state=MachineState.ERROR, machine="m")
    later = new_id()
    rig.hub.send(offer("m", later))
    assert rig.hub.wait_for(TaskDeclined, task_id=later).reason == "machine not ready (error)"
    rig.agent.reset_machine("m")
    rig.hub.wait_for(MachineStatus, where=lambda m: m.ts > failed.ts, state=MachineState.IDLE)


class UnpluggedSim(SimDriver):
    """A machine whose connection fails, as a printer with its USB cable pulled."""

    def connect(self) -> None:
        raise DeviceError("cannot open /dev/ttyUSB0: no such device")


def test_machine_that_cannot_connect_is_offline_and_declines(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("m") + machine_toml("ok"), drivers={"m": UnpluggedSim()})
    rig.hub.wait_for(MachineStatus, machine="m", state=MachineState.OFFLINE)
    rig.hub.wait_for(MachineStatus, machine="ok", state=MachineState.IDLE)
    task = new_id()
    rig.hub.send(offer("m", task))
    assert rig.hub.wait_for(TaskDeclined, task_id=task).reason == "machine not ready (offline)"
    body = UNSAFE
    rig.hub.send(assign("m", task, rig.artifacts.add(f"{task}.gcode", body), body))
    assert rig.hub.wait_for(TaskFailed, task_id=task).reason == "machine not ready (offline)"
