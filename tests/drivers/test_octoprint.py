"""OctoPrintDriver (through octorest) against the fake OctoPrint on a real HTTP socket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from fabnet.drivers.base import DriverState
from fabnet.drivers.octoprint import OctoPrintDriver
from fabnet.errors import Conflict, DeviceError
from fabnet.sim.octoprint_server import FakeOctoPrint

KEY = "0123456789ABCDEF"


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.03)


@pytest.fixture
def server() -> Iterator[FakeOctoPrint]:
    with FakeOctoPrint(api_key=KEY, speed=40.0) as fake:
        yield fake


@pytest.fixture
def gcode(tmp_path: Path) -> Path:
    path = tmp_path / "cube.gcode"
    moves = [f"G1 X{10 + i % 20} Y{10 + i % 13} E{i * 0.05:.2f} F1800" for i in range(60)]
    path.write_text("M104 S210\nM140 S60\nG28\n" + "\n".join(moves) + "\nM104 S0\n")
    return path  # 61 moves x 0.5 s = 30.5 simulated s = 0.76 s at speed 40


@pytest.fixture
def driver(server: FakeOctoPrint) -> Iterator[OctoPrintDriver]:
    octo = OctoPrintDriver(server.url, KEY)
    octo.connect()
    yield octo
    octo.disconnect()


def test_runs_a_file_to_completion(
    server: FakeOctoPrint, driver: OctoPrintDriver, gcode: Path
) -> None:
    assert driver.status().state is DriverState.IDLE
    driver.start(gcode)
    assert server.printer.files["cube.gcode"].data == gcode.read_bytes()
    status = driver.status()
    assert status.state is DriverState.RUNNING
    assert status.telemetry.hotend_c == (210.0, 210.0) and status.telemetry.bed_c == (60.0, 60.0)
    assert status.progress.bytes_total == gcode.stat().st_size
    wait_for(lambda: driver.status().state is DriverState.DONE, 10, "the print to finish")
    done = driver.status()
    assert done.progress.percent == 100.0 and done.progress.remaining_s == 0.0
    assert server.printer.events == ["upload cube.gcode", "select cube.gcode", "start", "finished"]
    assert "POST /api/files/local" in server.requests


def test_pause_resume_and_cancel(
    server: FakeOctoPrint, driver: OctoPrintDriver, gcode: Path
) -> None:
    driver.start(gcode)
    driver.pause()
    wait_for(lambda: driver.status().state is DriverState.PAUSED, 3, "Paused")
    held = driver.status().progress.bytes_done
    time.sleep(0.2)
    assert driver.status().progress.bytes_done == held
    driver.resume()
    wait_for(lambda: driver.status().state is DriverState.RUNNING, 3, "Printing again")
    driver.cancel()
    assert driver.status().state is DriverState.CANCELLING
    wait_for(lambda: driver.status().state is DriverState.IDLE, 3, "Operational after cancel")
    assert server.printer.events[-4:] == ["pause", "resume", "cancel", "cancelled"]
    assert server.printer.tool_c[1] == 0.0 and server.printer.bed_c[1] == 0.0
    with pytest.raises(Conflict, match="neither printing nor paused"):
        driver.pause()


def test_wrong_or_missing_key_is_refused_with_403(server: FakeOctoPrint) -> None:
    with pytest.raises(DeviceError, match=r"refused the API key \(403\)") as refused:
        OctoPrintDriver(server.url, "wrong-key").connect()
    assert refused.value.raw is not None and refused.value.raw.startswith("403")
    with pytest.raises(DeviceError, match=r"refused the API key \(403\)"):
        OctoPrintDriver(server.url, None).connect()
    assert requests.get(f"{server.url}/api/job", timeout=5).status_code == 403


def test_offline_printer_gives_clear_conflicts(
    server: FakeOctoPrint, driver: OctoPrintDriver, gcode: Path
) -> None:
    server.printer.set_offline()
    status = driver.status()
    assert status.state is DriverState.DISCONNECTED and status.telemetry.hotend_c is None
    with pytest.raises(Conflict, match="Printer is not operational"):
        driver.cancel()
    with pytest.raises(Conflict, match="disconnected"):
        driver.start(gcode)
    server.printer.set_connecting()  # just after a reconnect: job fields null, /api/printer 409
    assert driver.status().state is DriverState.CONNECTING
    server.printer.set_operational()
    assert driver.status().state is DriverState.IDLE


def test_error_state_is_reported_with_octoprint_text(
    server: FakeOctoPrint, driver: OctoPrintDriver
) -> None:
    server.printer.set_error("Thermal Runaway")
    status = driver.status()
    assert status.state is DriverState.ERROR
    assert status.error is not None and "Thermal Runaway" in status.error.message


def test_upload_over_the_printing_file_is_a_conflict(
    server: FakeOctoPrint, driver: OctoPrintDriver, gcode: Path
) -> None:
    driver.start(gcode)
    other = OctoPrintDriver(server.url, KEY)
    other.connect()
    with pytest.raises(Conflict, match="running"):
        other.start(gcode)
    with pytest.raises(Conflict, match="currently being printed"):
        other._call("the upload", lambda: other._upload(other._require_client(), gcode))
    driver.cancel()
