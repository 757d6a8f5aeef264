"""The paced pty link: a real device path, UART-speed pacing both ways, line splitting, close."""

from __future__ import annotations

import os
import time

import serial

from fabnet.sim.pty_link import LineSplitter, PtyLink, SerialFirmware, link_bytes_per_s


class Echo(SerialFirmware):
    def on_line(self, line: str) -> None:
        self.send_line(line.upper())


def test_link_is_paced_like_a_uart() -> None:
    assert link_bytes_per_s(115200) == 11520.0
    with Echo(baud=115200) as fw:
        port = serial.Serial(fw.path, 115200, timeout=5.0)
        try:
            payload = b"g1 x1 y2\n" * 256  # 2304 bytes each way: 0.2 s each at 11,520 B/s
            started = time.monotonic()
            port.write(payload)
            got = b""
            while len(got) < len(payload):
                chunk = port.read(len(payload) - len(got))
                assert chunk, "echo stopped"
                got += chunk
            elapsed = time.monotonic() - started
        finally:
            port.close()
    assert got == payload.upper()
    one_way_s = len(payload) / 11520
    assert one_way_s * 0.95 < elapsed < one_way_s * 2 + 0.3  # paced, and the two ways overlap


def test_unpaced_link_and_close_releases_the_pty() -> None:
    received: list[bytes] = []
    link = PtyLink(received.append, 9600, paced=False)
    port = serial.Serial(link.path, 9600, timeout=1.0)
    try:
        port.write(b"x" * 960)  # one second at 9600 baud if it were paced
        deadline = time.monotonic() + 0.5
        while sum(map(len, received)) < 960 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(map(len, received)) == 960
    finally:
        port.close()
    link.close()
    link.close()
    assert link.closed
    assert not os.path.exists(link.path) or link.path.startswith("/dev/pts")


def test_line_splitter_handles_cr_lf_and_split_chunks() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"G28\r\nM10") == ["G28"]
    assert splitter.feed(b"5\n\nM114\r") == ["M105", "M114"]
    assert splitter.feed(b"") == []
