"""``fabnet demo`` as a user runs it: a taken dashboard port is replaced by a free one that the
demo prints and serves on, and the demo's Mosquitto never outlives the demo, whether it is
SIGKILLed or stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from proc_support import pid_alive, wait_gone

START_TIMEOUT_S = 90.0


class DemoProcess:
    """A ``fabnet demo`` child whose stdout lines are collected by a reader thread."""

    def __init__(self, root: Path, port: int) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "fabnet.cli", "demo", "--duration", "60"]
        argv += ["--port", str(port), "--speed", "60", "--dir", str(root)]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        output = "\n".join(self.lines)
        raise AssertionError(f"demo never printed {pattern!r}; its output:\n{output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture()
def taken_port() -> Iterator[int]:
    """A port some other program listens on, for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _start(tmp_path: Path, port: int) -> tuple[DemoProcess, int, str]:
    demo = DemoProcess(tmp_path / "demo", port)
    broker_pid = int(demo.wait_for(r"broker\s+mqtt://\S+ \(pid (\d+);").group(1))
    url = demo.wait_for(r"^dashboard (http://127\.0\.0\.1:\d+)/").group(1)
    return demo, broker_pid, url


def _answers(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:  # any HTTP answer shows the hub serves there
        return exc.code


def test_taken_port_is_replaced_and_a_sigkilled_demo_takes_its_broker_along(
    tmp_path: Path, taken_port: int
) -> None:
    demo, broker_pid, url = _start(tmp_path, taken_port)
    try:
        assert f":{taken_port}" not in url
        assert any(f"port {taken_port} is taken" in line for line in demo.lines)
        assert _answers(url) < 500
        assert pid_alive(broker_pid)
        demo.proc.send_signal(signal.SIGKILL)
        demo.proc.wait()
        assert wait_gone(broker_pid), f"mosquitto {broker_pid} outlived the SIGKILLed demo"
    finally:
        demo.stop()


def test_sigterm_stops_the_demo_cleanly_with_its_broker(tmp_path: Path, taken_port: int) -> None:
    demo, broker_pid, url = _start(tmp_path, taken_port)
    try:
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.proc.wait(timeout=60) == 0
        demo.wait_for("demo stopped: broker, hub and makers are down")
        assert wait_gone(broker_pid)
        output = "\n".join(demo.lines)
        assert "Traceback" not in output, output
    finally:
        demo.stop()
