"""Streaming throughput over a paced 115200-baud pty: fabnet's Marlin and GRBL drivers against
their simulators, beside a naive one-line-in-flight sender (send, wait for ok), same run.

    .venv/bin/python bench/stream.py [--lines 20000] [--baud 115200]

Targets: GRBL >= 90 % of the link's capacity; Marlin >= 2x the one-line sender (issue 10). Rates are
bytes the link carried host -> firmware (each driver's own framing) per second of the job.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import serial

from fabnet.drivers.base import DriverState
from fabnet.drivers.marlin import MarlinDriver
from fabnet.drivers.marlin_protocol import frame
from fabnet.sim.marlin import MarlinSimulator
from fabnet.sim.pty_link import PtyLink, link_bytes_per_s

SPEED = 1e6  # motion is near-instant: the link and the firmware's ack latency dominate
ACK_LATENCY_S = 0.0015


def make_file(path: Path, lines: int) -> list[str]:
    commands = [
        f"G1 X{10 + (i * 7) % 180:.2f} Y{10 + (i * 13) % 180:.2f} F3000" for i in range(lines)
    ]
    path.write_text("\n".join(commands) + "\n", encoding="ascii")
    return commands


def run_driver(driver: Any, gcode: Path, link: PtyLink) -> tuple[int, float]:
    """Stream ``gcode`` with a fabnet driver; returns bytes the link carried to the firmware
    (as the driver framed them) and the seconds it took."""
    driver.connect()
    try:
        started = time.monotonic()
        before = link.rx_bytes
        driver.start(gcode)
        while driver.status().state in (DriverState.RUNNING, DriverState.PAUSED):
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        status = driver.status()
        if status.state != DriverState.DONE:
            raise SystemExit(f"driver ended {status.state}: {status.error}")
        return link.rx_bytes - before, elapsed
    finally:
        driver.disconnect()


def naive_send(path: str, baud: int, wire_lines: list[bytes]) -> float:
    """One line in flight: write it, wait for the line starting with ``ok``."""
    port = serial.Serial(path, baud, timeout=5.0)
    try:
        time.sleep(0.3)
        port.reset_input_buffer()
        started = time.monotonic()
        for data in wire_lines:
            port.write(data)
            while True:
                answer = port.readline()
                if not answer:
                    raise SystemExit(f"naive sender: no answer to {data!r}")
                if answer.startswith(b"ok"):
                    break
                if answer.startswith((b"error", b"Error", b"ALARM")):
                    raise SystemExit(f"naive sender: {answer!r} for {data!r}")
        return time.monotonic() - started
    finally:
        port.close()


def report(name: str, wire_bytes: int, seconds: float, capacity: float) -> float:
    rate = wire_bytes / seconds
    print(
        f"  {name:<28} {seconds:7.1f} s {rate:9.0f} B/s  {100 * rate / capacity:5.1f} % of link",
        flush=True,
    )
    return rate


def bench_marlin(commands: list[str], gcode: Path, baud: int, capacity: float) -> None:
    print("marlin (ADVANCED_OK, BUFSIZE 4, ack latency 1.5 ms)")
    wire = [frame(n, cmd).encode("ascii") for n, cmd in enumerate(commands, start=1)]
    wire_bytes = sum(len(w) for w in wire)
    with MarlinSimulator(baud, SPEED, ack_latency_s=ACK_LATENCY_S) as sim:
        fabnet_bytes, fabnet_s = run_driver(MarlinDriver(sim.path, baud), gcode, sim.link)
    with MarlinSimulator(baud, SPEED, ack_latency_s=ACK_LATENCY_S) as sim:
        naive_s = naive_send(sim.path, baud, [frame(0, "M110 N0").encode(), *wire])
    fast = report("fabnet MarlinDriver", fabnet_bytes, fabnet_s, capacity)
    slow = report("one line in flight", wire_bytes, naive_s, capacity)
    print(f"  speed-up over one-line sender: {fast / slow:.2f}x (target >= 2x)")


def bench_grbl(commands: list[str], gcode: Path, baud: int, capacity: float) -> None:
    try:
        grbl_sim: Callable[..., Any] = importlib.import_module("fabnet.sim.grbl").GrblSimulator
        grbl_driver: Callable[..., Any] = importlib.import_module("fabnet.drivers.grbl").GrblDriver
    except (ImportError, AttributeError) as exc:
        print(f"grbl: not available yet ({exc})")
        return
    print("grbl (character counting, 127-byte RX buffer)")
    wire = [(cmd + "\n").encode("ascii") for cmd in commands]
    wire_bytes = sum(len(w) for w in wire)
    sim = grbl_sim(baud=baud, speed=SPEED)
    sim.start()
    try:
        fabnet_bytes, fabnet_s = run_driver(grbl_driver(sim.path, baud), gcode, sim.link)
    finally:
        sim.close()
    sim = grbl_sim(baud=baud, speed=SPEED)
    sim.start()
    try:
        naive_s = naive_send(sim.path, baud, wire)
    finally:
        sim.close()
    fast = report("fabnet GrblDriver", fabnet_bytes, fabnet_s, capacity)
    report("one line in flight", wire_bytes, naive_s, capacity)
    print(f"  link use: {100 * fast / capacity:.1f} % (target >= 90 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--only", choices=["marlin", "grbl"])
    args = parser.parse_args()
    capacity = link_bytes_per_s(args.baud)
    print(f"link: {args.baud} baud = {capacity:.0f} B/s each way; {args.lines} lines")
    with tempfile.TemporaryDirectory() as tmp:
        gcode = Path(tmp) / "bench.gcode"
        commands = make_file(gcode, args.lines)
        if args.only in (None, "marlin"):
            bench_marlin(commands, gcode, args.baud, capacity)
        if args.only in (None, "grbl"):
            bench_grbl(commands, gcode, args.baud, capacity)


if __name__ == "__main__":
    main()
