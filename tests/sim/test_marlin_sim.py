"""The Marlin simulator on the wire, through a real pty: scenario files of sent lines,
expected answers and executed commands; heaters over time; fault plan parsing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import serial

from fabnet.errors import InvalidInput
from fabnet.sim.marlin import BANNER, MarlinSimulator, checksum
from fabnet.sim.marlin_faults import FaultPlan

SCENARIOS = Path(__file__).parent / "scenarios" / "marlin_protocol.txt"


def load_scenarios() -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for raw in SCENARIOS.read_text().splitlines():
        if not raw.strip():
            if blocks[-1]:
                blocks.append([])
        elif not raw.startswith("#"):
            blocks[-1].append(raw)
    return [b for b in blocks if b]


def wire(text: str) -> bytes:
    if text.endswith("*"):
        text = f"{text}{checksum(text[:-1])}"
    return (text + "\n").encode("ascii")


def read_banner(port: serial.Serial) -> None:
    """Skip what the board printed before the test opened it (pyserial drops part of it)."""
    port.timeout = 0.2
    while port.readline():
        pass
    port.timeout = 2.0


@pytest.mark.parametrize("scenario", load_scenarios(), ids=lambda s: s[0][:24])
def test_scenario(scenario: list[str]) -> None:
    with MarlinSimulator(speed=1000.0) as sim:
        port = serial.Serial(sim.path, 115200)
        try:
            read_banner(port)
            ran: list[str] = []
            for step in scenario:
                kind, text = step[0], step[2:]
                if kind == ">":
                    port.write(wire(text))
                elif kind == "<":
                    assert port.readline().decode().rstrip("\n") == text
                else:
                    ran.append(text)
            assert sim.executed == ran
        finally:
            port.close()


def test_heaters_approach_targets_and_m109_blocks_with_busy() -> None:
    with MarlinSimulator(speed=40.0, busy_interval_s=0.2) as sim:
        port = serial.Serial(sim.path, 115200, timeout=5.0)
        try:
            read_banner(port)
            started = time.monotonic()
            port.write(b"M109 S100\n")  # 79 degC at 2.5 degC/s x 40: ~0.8 s
            lines = []
            while not (line := port.readline().decode().strip()).startswith("ok"):
                lines.append(line)
            assert 0.6 < time.monotonic() - started < 3.0
            assert "echo:busy: processing" in lines
            assert sim.snapshot()["hotend_target_c"] == 100.0
            assert sim.machine.hotend.reached()
        finally:
            port.close()


def test_banner_is_printed_at_start_and_after_a_reset() -> None:
    with MarlinSimulator(faults=FaultPlan(reset_at=1)) as sim:
        port = serial.Serial(sim.path, 115200, timeout=2.0)
        try:
            read_banner(port)
            port.write(wire("N1 G28*"))
            got = [port.readline().decode().rstrip("\n") for _ in BANNER]
            assert got == list(BANNER)
            assert sim.resets == 1 and sim.executed == []
        finally:
            port.close()


def test_fault_plan_parses_specs_and_names_bad_ones() -> None:
    plan = FaultPlan.parse(["corrupt:3", "corrupt:9", "drop-ok:4", "busy:5:2.5", "reset:7"])
    assert plan.corrupt == {3, 9} and plan.drop_ok == {4}
    assert plan.busy_s == {5: 2.5} and plan.reset_at == 7
    for bad in ("corrupt", "corrupt:x", "busy:3", "explode:3", "halt:0"):
        with pytest.raises(InvalidInput, match="fault"):
            FaultPlan.parse([bad])
