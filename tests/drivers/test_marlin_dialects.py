"""Each firmware dialect x each fault, through a real pty with pyserial: the driver recovers
communication errors exactly once (the simulator ran the file's lines, in order, once) and
ends the job in an error, raw line kept, on each real fault. Also the text table itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from marlin_support import FAST_BAUD, DriverFactory, SimFactory, move_lines, wait_state, write_gcode

from fabnet.drivers.base import DriverState
from fabnet.drivers.marlin_dialects import LineKind, classify, parse_m115
from fabnet.drivers.marlin_protocol import MarlinStream
from fabnet.errors import DeviceError
from fabnet.sim.marlin_dialects import DIALECTS, FAULT_LINES, HALT_LINE
from fabnet.sim.marlin_faults import FaultPlan

DONE = {DriverState.DONE, DriverState.ERROR}
COMMANDS = move_lines(200)
LAST = len(COMMANDS)
POLLS = ("M105",)  # the driver's temperature polls where the firmware cannot auto-report

RECOVERABLE: dict[str, tuple[list[str], dict[str, float]]] = {
    "checksum": (["corrupt:10"], {}),
    "resend-several-in-flight": (["corrupt:41", "corrupt:42", "corrupt:150"], {}),
    "line-number-in-flight": (["lose:60"], {}),
    "no-checksum": (["nochecksum:70"], {}),
    "no-line-number": (["noline:80"], {}),
    "lost-ok": (["drop-ok:90", f"drop-ok:{LAST}"], {}),
    "busy-at-connect": ([], {"busy_at_start_s": 1.5}),
}
FATAL: dict[str, tuple[str, str]] = {
    "halt": ("halt:30", HALT_LINE),
    **{kind: (f"{kind}:30", line) for kind, line in FAULT_LINES.items()},
}


@pytest.mark.parametrize("fault", list(RECOVERABLE))
@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_recovers_and_runs_the_file_exactly_once(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    dialect: str,
    fault: str,
) -> None:
    specs, options = RECOVERABLE[fault]
    gcode = write_gcode(tmp_path / "moves.gcode", COMMANDS)
    sim = marlin_sim(FaultPlan.parse(specs), baud=FAST_BAUD, dialect=dialect, **options)
    driver = marlin_driver(sim, ok_timeout_s=0.5)
    assert driver.capabilities.autoreport_temp == ("AUTOREPORT_TEMP" in sim.dialect.capabilities)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.DONE, driver.status().error
    ran = [cmd for cmd in sim.executed[mark:] if cmd not in POLLS]
    assert ran == ["M110 N0", *COMMANDS, "M400"]
    assert driver.status().progress.lines_done == LAST


@pytest.mark.parametrize("fault", list(FATAL))
@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_a_real_fault_ends_the_job_with_the_raw_line(
    tmp_path: Path,
    marlin_sim: SimFactory,
    marlin_driver: DriverFactory,
    dialect: str,
    fault: str,
) -> None:
    spec, raw = FATAL[fault]
    gcode = write_gcode(tmp_path / "moves.gcode", COMMANDS)
    sim = marlin_sim(FaultPlan.parse([spec]), baud=FAST_BAUD, dialect=dialect)
    driver = marlin_driver(sim)
    mark = len(sim.executed)
    driver.start(gcode)
    assert wait_state(driver, DONE) == DriverState.ERROR
    status = driver.status()
    assert status.error is not None and status.error.raw == raw
    ran = [cmd for cmd in sim.executed[mark + 1 :] if cmd not in POLLS]
    assert ran == COMMANDS[:30], "nothing runs after the faulting line"
    assert sim.snapshot()["hotend_target_c"] == 0.0


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Error:Line Number is not Last Line Number+1, Last Line: 299", LineKind.COMM_ERROR),
        ("Error:checksum mismatch, Last Line: 12", LineKind.COMM_ERROR),
        ("Error:No Checksum with line number, Last Line: 12", LineKind.COMM_ERROR),
        ("Error:No Line Number with checksum, Last Line: 12", LineKind.COMM_ERROR),
        ("Error:expected line 300 got 301", LineKind.COMM_ERROR),
        ("Error: Expected Line 1 got 2", LineKind.COMM_ERROR),
        ("Error:Wrong checksum", LineKind.COMM_ERROR),
        ("Error:Missing checksum", LineKind.COMM_ERROR),
        ("Error:Printer halted. kill() called!", LineKind.FATAL),
        ("Error:Thermal Runaway, system stopped! Heater_ID: 0", LineKind.FATAL),
        ("Error:MINTEMP triggered, system stopped! Heater_ID: bed", LineKind.FATAL),
        ("Error:MAXTEMP triggered, system stopped! Heater_ID: 0", LineKind.FATAL),
        ("Error:Heating failed, system stopped! Heater_ID: 0", LineKind.FATAL),
        ("fatal:Heater decoupled", LineKind.FATAL),
        ("!!", LineKind.FATAL),
        ("Error:Probing failed", LineKind.UNKNOWN_ERROR),
        ("echo:busy: processing", LineKind.OTHER),
    ],
)
def test_the_table_sorts_firmware_lines(line: str, kind: LineKind) -> None:
    assert classify(line) == kind


def _stream_after(lines: list[str], sent: int = 3) -> MarlinStream:
    """A stream that sent ``sent`` lines, then heard ``lines`` (no port: bytes are dropped)."""
    stream = MarlinStream(lambda data: None, window=4)
    stream.restart_numbering()
    for i in range(sent):
        stream.submit(f"G1 X{i}")
    for line in lines:
        stream.on_line(line)
    return stream


def test_an_unknown_error_followed_by_a_resend_is_recovered() -> None:
    stream = _stream_after(["ok", "Error: unexpected thing on line 2", "Resend: 2", "ok"])
    assert stream.failure is None


def test_an_unknown_error_followed_by_anything_else_fails_with_the_raw_line() -> None:
    stream = _stream_after(["ok", "Error:Probing failed", "ok"])
    assert isinstance(stream.failure, DeviceError)
    assert stream.failure.raw == "Error:Probing failed"


def test_the_issue_transcript_is_a_communication_error() -> None:
    # a firmware fabnet did not write answered a resent line so, with 301 already in flight
    stream = _stream_after(["Error: expected line 300 got 301", "Resend:300", "ok"], sent=4)
    assert stream.failure is None


def test_m115_capabilities_are_read_per_firmware() -> None:
    for dialect in DIALECTS.values():
        caps = parse_m115(dialect.m115())
        assert caps.caps == dialect.capabilities
        assert caps.resend_with_ok == dialect.resend_ok
