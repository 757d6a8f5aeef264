"""``fabnet sim marlin`` as a real process and ``fabnet print`` streaming to it."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from marlin_support import move_lines, write_gcode

from fabnet.drivers.cli import print_command

FABNET = [sys.executable, "-m", "fabnet.cli"]


@pytest.fixture
def sim_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [*FABNET, "sim", "marlin", "--speed", "1000", "--baud", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    assert path.startswith("/dev/"), path
    yield proc, path
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_print_streams_a_checked_file_and_sim_stops_on_ctrl_c(
    tmp_path: Path, sim_process: tuple[subprocess.Popen[str], str]
) -> None:
    proc, path = sim_process
    gcode = write_gcode(tmp_path / "part.gcode", move_lines(300))
    args = [str(gcode), "--driver", "marlin", "--port", path, "--baud", "1000000"]
    result = CliRunner().invoke(print_command, [*args, "--profile", "prusa_mk3s"])
    assert result.exit_code == 0, result.output
    assert "done: part.gcode" in result.output
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=5) == 0


def test_print_refuses_unsafe_gcode_and_a_missing_profile(tmp_path: Path) -> None:
    too_high = write_gcode(tmp_path / "high.gcode", ["G28", "G1 Z900 F600"])
    result = subprocess.run(
        [*FABNET, "print", str(too_high), "--driver", "marlin", "--port", "/dev/null",
         "--profile", "prusa_mk3s"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "safety" in result.stderr.lower(), result.stderr
    result = subprocess.run(
        [*FABNET, "print", str(too_high), "--driver", "marlin", "--port", "/dev/null"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "--profile" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("dialect", "fault"),
    [("repetier", "lose:50"), ("smoothie", "corrupt:40"), ("rrf", "noline:30")],
)
def test_sim_speaks_a_dialect_and_print_recovers_its_resends(
    tmp_path: Path, dialect: str, fault: str
) -> None:
    proc = subprocess.Popen(
        [*FABNET, "sim", "marlin", "--speed", "1000", "--baud", "1000000",
         "--dialect", dialect, "--fault", fault],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), path
        gcode = write_gcode(tmp_path / "part.gcode", move_lines(120))
        args = [str(gcode), "--driver", "marlin", "--port", path, "--baud", "1000000"]
        result = CliRunner().invoke(print_command, [*args, "--profile", "prusa_mk3s"])
        assert result.exit_code == 0, result.output
        assert "done: part.gcode" in result.output
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0


def test_sim_refuses_an_unknown_dialect() -> None:
    result = subprocess.run(
        [*FABNET, "sim", "marlin", "--dialect", "klipper"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "klipper" in result.stderr, result.stderr
