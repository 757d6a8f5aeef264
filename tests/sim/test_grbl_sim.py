"""The GRBL simulator, spoken to through its pty with plain pyserial like a naive sender."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import serial

from fabnet.errors import InvalidInput
from fabnet.sim.grbl import GrblSimulator
from fabnet.sim.grbl_faults import GrblFaults


class Port:
    """A pyserial port with a line reader; ``expect`` waits for a line with a prefix."""

    def __init__(self, sim: GrblSimulator) -> None:
        self.serial = serial.Serial(sim.device_path, 115200, timeout=0.05)
        self.lines: list[str] = []
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.serial.write(data)

    def _pump(self) -> None:
        self._buffer += self.serial.read(4096)
        *complete, self._buffer = self._buffer.split(b"\n")
        self.lines += [c.decode().strip() for c in complete if c.strip()]

    def expect(self, prefix: str, timeout_s: float = 10.0) -> str:  # patience, not a limit
        deadline = time.monotonic() + timeout_s
        while True:
            for i, line in enumerate(self.lines):
                if line.startswith(prefix):
                    del self.lines[: i + 1]
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no line starting {prefix!r}; got {self.lines}")
            self._pump()

    def status(self) -> str:
        self.send(b"?")
        return self.expect("<")


@pytest.fixture
def open_sim() -> Iterator[Callable[..., tuple[GrblSimulator, Port]]]:
    sims: list[GrblSimulator] = []

    def make(**kwargs: object) -> tuple[GrblSimulator, Port]:
        sim = GrblSimulator(**kwargs)  # type: ignore[arg-type]
        sims.append(sim)
        port = Port(sim)
        port.expect("Grbl 1.1h ['$' for help]")
        return sim, port

    yield make
    for sim in sims:
        sim.close()


def test_banner_status_and_realtime_bytes_bypass_the_line_buffer(open_sim) -> None:
    sim, port = open_sim()
    assert port.status() == "<Idle|MPos:0.000,0.000,0.000|Bf:15,128|FS:0,0|WCO:0.000,0.000,0.000>"
    port.send(b"G1X1")  # half a line sits in the buffer; '?' is answered at once anyway
    assert port.status().startswith("<Idle|")
    port.send(b"F60\n")
    port.expect("ok")
    assert port.status().startswith("<Run|")
    assert sim.executed_lines == ["G1X1F60"]


def test_error_codes(open_sim) -> None:
    sim, port = open_sim()
    for line, answer in [
        (b"G1 X5\n", "error:22"),  # feed rate undefined
        (b"G1 X\n", "error:2"),
        (b"G38.2 Z-1 F10\n", "error:20"),
        (b"M6 T1\n", "error:20"),
        (b"G0 G1 X1\n", "error:21"),
        (b"$Q\n", "error:3"),
        (b"(just a comment)\n", "ok"),
        (b"g0 x1 ; lower case\n", "ok"),
    ]:
        port.send(line)
        assert port.expect("") == answer, line
    assert sim.executed_lines == ["G0X1"]


def test_hold_resume_and_reset_during_motion(open_sim) -> None:
    sim, port = open_sim(speed=1.0, hold_decel_s=0.2)
    port.send(b"M3 S9000\nG1 X50 F600\n")
    port.expect("ok")
    port.expect("ok")
    assert port.status().startswith("<Run|")
    port.send(b"!")
    assert port.status().startswith("<Hold:1|")
    time.sleep(0.3)
    assert port.status().startswith("<Hold:0|")
    port.send(b"~")
    assert port.status().startswith("<Run|")
    port.send(b"\x18")
    assert port.expect("ALARM:") == "ALARM:3"
    port.expect("Grbl 1.1h")
    port.expect("[MSG:'$H'|'$X' to unlock]")
    assert port.status().startswith("<Alarm|") and sim.spindle_rpm == 0.0
    port.send(b"G0 X1\n")
    assert port.expect("") == "error:9"
    port.send(b"$X\n")
    port.expect("[MSG:Caution: Unlocked]")
    port.expect("ok")


def test_reset_after_a_completed_hold_keeps_position_without_alarm(open_sim) -> None:
    sim, port = open_sim(speed=1.0)
    port.send(b"G1 X50 F600\n")
    port.expect("ok")
    time.sleep(0.2)
    port.send(b"!")
    time.sleep(0.2)
    held = sim.mpos
    assert port.status().startswith("<Hold:0|") and held[0] > 0
    port.send(b"\x18")
    port.expect("Grbl 1.1h")
    assert port.status().startswith("<Idle|") and sim.mpos == held and sim.alarms_raised == []


def test_a_sender_that_ignores_the_buffer_loses_bytes(open_sim) -> None:
    sim, port = open_sim(speed=1.0)
    program = b"".join(b"G1 X%d Y%d F100\n" % (i, i) for i in range(1, 41))  # 40 slow moves
    port.send(program)
    time.sleep(0.6)
    assert sim.rx_overflow_bytes > 0 and sim.rx_high_water == 127
    assert sim.planner_blocks == 15 and len(sim.executed_lines) < 40


def test_soft_limit_alarm_needs_reset_then_unlock(open_sim) -> None:
    sim, port = open_sim(homing=True, speed=50.0)
    port.expect("[MSG:'$H'|'$X' to unlock]")
    port.send(b"$H\n")
    port.expect("ok")
    assert sim.mpos == (-1.0, -1.0, -1.0)
    port.send(b"G53 G0 Z5\n")  # above the top of travel
    assert port.expect("ALARM:") == "ALARM:2"
    port.expect("[MSG:Reset to continue]")
    port.send(b"$X\n")
    time.sleep(0.1)
    assert port.status().startswith("<Alarm|")  # ignored until a reset
    port.send(b"\x18")
    port.expect("Grbl 1.1h")
    port.send(b"$X\n")
    port.expect("ok")
    assert sim.alarms_raised == [2]


def test_settings_are_reported_and_writes_recorded(open_sim) -> None:
    sim, port = open_sim()
    port.send(b"$$\n")
    assert port.expect("$110=") == "$110=5000.000"
    port.expect("ok")
    port.send(b"$110=9000\n$I\n")
    port.expect("ok")
    port.expect("[VER:1.1h")
    assert sim.setting_writes == ["$110=9000"] and sim.settings[110] == 9000.0


def test_injected_faults() -> None:
    faults = GrblFaults.parse("error:20@5, alarm:1@40,silence@80,door@30")
    assert faults == GrblFaults({5: 20}, {40: 1}, 80, 30)
    with pytest.raises(InvalidInput, match="boom@3"):
        GrblFaults.parse("boom@3")


def test_injected_error_and_silence(open_sim) -> None:
    sim, port = open_sim(faults="error:22@2,silence@3")
    port.send(b"G0 X1\nG0 X2\n")
    assert [port.expect(""), port.expect("")] == ["ok", "error:22"]
    port.send(b"G0 X3\n")
    time.sleep(0.2)
    port.send(b"?")
    time.sleep(0.2)
    port._pump()
    assert port.lines == []
