"""Long-running commands of the field test (broker, hub, simulator, agent), each a real process
of the installed ``fabnet`` (or ``mosquitto``), started in its user's folder and always ended
when the test ends, with its output kept for the failure message.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from installed_support import CHECKOUT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Running:
    """One started command; its stdout and stderr lines are collected by a reader thread."""

    def __init__(self, name: str, args: Sequence[str | Path], cwd: Path, env: Mapping[str, str]):
        assert not Path(cwd).resolve().is_relative_to(CHECKOUT), f"{cwd} is inside the checkout"
        self.name = name
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [str(a) for a in args],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, name=f"read-{name}", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_line(self, match: Callable[[str], bool], timeout_s: float) -> str:
        """The first output line ``match`` accepts; fails with the output if none comes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                found = next((line for line in self.lines if match(line)), None)
            if found is not None:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no such line in {timeout_s} s\n{self.output()}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout_s} s\n"
                                 f"{self.output()}") from None  # fmt: skip

    def end(self) -> None:
        """SIGTERM, then SIGKILL of its whole session after a grace period."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@contextmanager
def processes() -> Iterator[Callable[..., Running]]:
    """``start(name, args, cwd, env)`` within the block; everything started ends with it."""
    started: list[Running] = []

    def start(name: str, args: Sequence[str | Path], cwd: Path, env: Mapping[str, str]) -> Running:
        started.append(Running(name, args, cwd, env))
        return started[-1]

    try:
        yield start
    finally:
        for running in reversed(started):
            running.end()


def api(base: str, token: str, method: str, path: str) -> Any:
    """``method base/api/v1/path`` with a bearer token; the JSON answer."""
    request = urllib.request.Request(
        f"{base}/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def wait_healthy(base: str, hub: Running, timeout_s: float) -> None:
    """Until ``base/healthz`` answers 200 (fails with the hub's output if it never does)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if hub.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"hub not healthy at {base} in {timeout_s} s\n{hub.output()}")


def until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``check`` until it returns something true; fails naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not so after {timeout_s} s (last: {last!r})")
