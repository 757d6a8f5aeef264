"""GrblDriver against the GRBL simulator through a real pty opened with pyserial."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fabnet.drivers.base import DriverState
from fabnet.drivers.grbl import GrblDriver
from fabnet.drivers.grbl_protocol import RX_BUFFER_BYTES, JobLine, prepare_job
from fabnet.errors import Conflict, DeviceError, GcodeError
from fabnet.sim.grbl import GrblSimulator
from fabnet.sim.grbl_faults import GrblFaults
from fabnet.sim.pty_link import SerialFirmware


def cnc_job(passes: int = 30) -> str:
    """A small pocketing-like program: comments, lowercase, arcs, spindle on/off."""
    lines = ["; fabnet GRBL test job", "G21 G90 G17 G94 (mm, absolute)", "M3 S12000", "G0 Z5"]
    for i in range(passes):
        x, y = 10 + (i % 5) * 4, 10 + (i % 7) * 3
        lines += [
            "G0 Z1",
            f"g0 x{x} y{y} ; lowercase on purpose",
            "G1 Z-0.5 F300",
            f"G2 X{x} Y{y} I-2 J0 F800",
        ]
    lines += ["G0 Z5", "M5", "G0 X0 Y0", "M2"]
    return "\n".join(lines) + "\n"


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def expected_lines(path: Path) -> list[JobLine]:
    return prepare_job(path.read_text().splitlines())


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.nc"
    path.write_text(cnc_job())
    return path


@pytest.fixture
def make_rig() -> Iterator[Callable[..., tuple[GrblSimulator, GrblDriver]]]:
    made: list[tuple[GrblSimulator, GrblDriver]] = []

    def make(
        sim_kwargs: dict[str, object] | None = None, **driver_kwargs: object
    ) -> tuple[GrblSimulator, GrblDriver]:
        sim = GrblSimulator(**(sim_kwargs or {}))  # type: ignore[arg-type]
        driver = GrblDriver(sim.device_path, 115200, **driver_kwargs)  # type: ignore[arg-type]
        made.append((sim, driver))
        return sim, driver

    yield make
    for sim, driver in made:
        driver.disconnect()
        sim.close()


def test_streams_a_whole_file_in_order_without_overflow(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 60.0})
    driver.connect()
    assert driver.status().state is DriverState.IDLE
    driver.start(job_file)
    wait_for(lambda: driver.status().state is DriverState.DONE, 15, "the job to finish")

    expected = [line.text for line in expected_lines(job_file)]
    assert sim.executed_lines == expected  # every line once, in order, normalised like GRBL
    assert sim.rx_overflow_bytes == 0
    assert RX_BUFFER_BYTES // 2 < sim.rx_high_water <= RX_BUFFER_BYTES  # the buffer was used
    progress = driver.status().progress
    assert (progress.lines_done, progress.percent) == (len(expected), 100.0)
    assert "$X" not in sim.received_lines and sim.setting_writes == []
    assert sim.spindle_rpm == 0.0 and sim.state_text == "Idle"


def test_job_status_reports_position_spindle_and_grbl_state(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 20.0})
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: driver.status().telemetry.spindle_rpm == 12000, 5, "spindle rpm in FS")
    telemetry = driver.status().telemetry
    assert telemetry.extra["grbl_state"] in ("Run", "Idle")
    assert telemetry.position_mm is not None
    driver.cancel()


def test_error_is_reported_with_line_and_the_machine_made_safe(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 40.0, "faults": GrblFaults(error_at={30: 20})})
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: driver.status().state is DriverState.ERROR, 10, "the error")
    bad = expected_lines(job_file)[29]
    error = driver.status().error
    assert error is not None and error.raw == "error:20"
    assert "Unsupported command" in error.message
    assert f"line {bad.line_no}: {bad.text}" in error.message
    wait_for(lambda: sim.received_lines[-1] == "G21G90G0Z5.000", 5, "the retract")
    wait_for(lambda: sim.state_text == "Idle", 5, "the machine to rest")
    assert sim.spindle_rpm == 0.0 and sim.wpos[2] == pytest.approx(5.0)
    assert "$X" not in sim.received_lines


def test_alarm_stops_the_job_and_is_explained(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 40.0, "faults": "alarm:1@25"})
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: driver.status().state is DriverState.ERROR, 10, "the alarm")
    error = driver.status().error
    assert error is not None and error.raw == "ALARM:1"
    assert "Hard limit" in error.message
    assert sim.spindle_rpm == 0.0 and sim.planner_blocks == 0
    assert "$X" not in sim.received_lines and sim.resets == 0  # a person must look first


def test_silent_firmware_is_reported(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 40.0, "faults": "silence@20"}, response_timeout_s=0.8)
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: driver.status().state is DriverState.ERROR, 6, "silence to be noticed")
    error = driver.status().error
    assert error is not None and "stopped answering" in error.message


def test_safety_door_pauses_then_the_job_resumes(make_rig, job_file: Path) -> None:
    faults = GrblFaults(door_at=20, door_open_s=0.4)
    sim, driver = make_rig({"speed": 40.0, "faults": faults})
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: driver.status().state is DriverState.PAUSED, 10, "the door to pause the job")
    assert driver.status().telemetry.extra.get("door") == "open"
    with pytest.raises(Conflict, match="door"):
        driver.resume()
    wait_for(lambda: sim.state_text == "Door:0", 5, "the door to close")
    driver.resume()
    wait_for(lambda: driver.status().state is DriverState.DONE, 15, "the job to finish")
    assert sim.executed_lines == [line.text for line in expected_lines(job_file)]


def test_pause_holds_motion_and_resume_finishes(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 15.0})
    driver.connect()
    driver.start(job_file)
    time.sleep(0.4)
    driver.pause()
    assert driver.status().state is DriverState.PAUSED
    wait_for(lambda: sim.state_text == "Hold:0", 3, "the hold to complete")
    still = sim.mpos
    time.sleep(0.3)
    assert sim.mpos == still
    with pytest.raises(Conflict):
        driver.pause()
    driver.resume()
    assert driver.status().state is DriverState.RUNNING
    wait_for(lambda: driver.status().state is DriverState.DONE, 15, "the job to finish")
    assert sim.executed_lines == [line.text for line in expected_lines(job_file)]


def test_cancel_stops_spindle_and_raises_z(make_rig, job_file: Path) -> None:
    sim, driver = make_rig({"speed": 15.0})
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: sim.spindle_rpm == 12000 and sim.wpos[2] < 0, 5, "cutting to start")
    driver.cancel()
    assert driver.status().state is DriverState.IDLE
    assert sim.state_text == "Idle" and sim.spindle_rpm == 0.0 and sim.planner_blocks == 0
    assert sim.wpos[2] == pytest.approx(5.0)
    assert sim.received_lines[-3:] == ["$G", "M5", "G21G90G0Z5.000"]
    assert "$X" not in sim.received_lines and sim.alarms_raised == []  # hold first: no ALARM:3
    with pytest.raises(Conflict):
        driver.cancel()


def test_homed_machine_unlocks_only_when_allowed(make_rig, tmp_path: Path) -> None:
    sim, driver = make_rig({"homing": True})
    with pytest.raises(DeviceError, match=r"\$X") as refused:
        driver.connect()
    assert refused.value.raw == "[MSG:'$H'|'$X' to unlock]"
    assert "$X" not in sim.received_lines

    sim, driver = make_rig({"homing": True, "speed": 15.0}, allow_unlock=True)
    driver.connect()
    assert sim.received_lines.count("$X") == 1 and sim.state_text == "Idle"
    job = tmp_path / "homed.nc"
    job.write_text(cnc_job().replace("Z-0.5", "Z0.5"))  # work zero is the bottom of travel
    driver.start(job)
    wait_for(lambda: sim.spindle_rpm > 0 and sim.wpos[2] < 1, 5, "cutting to start")
    driver.cancel()
    assert sim.received_lines[-1] == "G53G0Z-1.000" and sim.mpos[2] == pytest.approx(-1.0)
    assert sim.spindle_rpm == 0.0 and sim.alarms_raised == []


@pytest.mark.parametrize("allow_unlock", [False, True])
def test_reset_mid_motion_alarm_is_unlocked_only_when_allowed(
    make_rig, job_file: Path, allow_unlock: bool
) -> None:
    sim, driver = make_rig(
        {"speed": 15.0, "hold_decel_s": 5.0}, allow_unlock=allow_unlock, hold_timeout_s=0.3
    )
    driver.connect()
    driver.start(job_file)
    wait_for(lambda: sim.state_text == "Run" and sim.spindle_rpm > 0, 5, "motion")
    if allow_unlock:
        driver.cancel()
        assert sim.received_lines[-4:] == ["$G", "$X", "M5", "G21G90G0Z5.000"]
        assert driver.status().state is DriverState.IDLE
    else:
        with pytest.raises(DeviceError, match="ALARM:3") as stuck:
            driver.cancel()
        assert stuck.value.raw == "ALARM:3"
        assert driver.status().state is DriverState.ERROR
        assert "$X" not in sim.received_lines
    assert sim.alarms_raised == [3] and sim.spindle_rpm == 0.0


class _NotGrbl(SerialFirmware):
    def on_start(self) -> None:
        self.send_line("start")
        self.send_line("echo:Marlin 2.1.2")

    def on_line(self, line: str) -> None:
        self.send_line("ok")


def test_a_device_that_is_not_grbl_is_refused() -> None:
    with _NotGrbl() as other:
        driver = GrblDriver(other.path, connect_timeout_s=1.0)
        with pytest.raises(DeviceError, match="does not answer like GRBL") as refused:
            driver.connect()
        assert refused.value.raw == "start"
        assert driver.status().state is DriverState.DISCONNECTED


def test_lines_grbl_cannot_take_are_refused_before_streaming(make_rig, tmp_path: Path) -> None:
    sim, driver = make_rig()
    driver.connect()
    long_line = tmp_path / "long.nc"
    long_line.write_text("G21\nG1 X1 " + "Y1.00000000 " * 9 + "F100\n")
    with pytest.raises(GcodeError, match="line 2"):
        driver.start(long_line)
    settings = tmp_path / "settings.nc"
    settings.write_text("G21\n$110=9000\n")
    with pytest.raises(GcodeError, match=r"\$110"):
        driver.start(settings)
    assert sim.setting_writes == [] and driver.status().state is DriverState.IDLE
