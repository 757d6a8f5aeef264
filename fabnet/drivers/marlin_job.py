"""One streaming job of a serial driver: the file's commands, pause/cancel requests, progress,
and the watch kept on the heaters while it runs.

Shared by the serial drivers; the commands are the file's lines without comments and blanks.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fabnet.drivers.base import Progress
from fabnet.drivers.marlin_protocol import strip_gcode
from fabnet.errors import InvalidInput, NotFound


def load_commands(gcode_file: Path) -> list[str]:
    """The commands of ``gcode_file`` in order; raises NotFound / InvalidInput (not text)."""
    try:
        text = gcode_file.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise NotFound(f"G-code file {gcode_file} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"G-code file {gcode_file} is not ASCII text: {exc}") from exc
    return [cmd for cmd in (strip_gcode(line) for line in text.splitlines()) if cmd]


class Job:
    """Progress is counted in acknowledged lines and their bytes (as sent, without N/checksum)."""

    def __init__(self, name: str, commands: list[str]) -> None:
        self.name = name
        self.commands = commands
        self.sent = 0
        self.pause_requested = threading.Event()
        self.cancel_requested = threading.Event()
        self._bytes_upto = [0, *itertools.accumulate(len(c) + 1 for c in commands)]
        self._first_n = 1
        self._t0: float | None = None
        self._t1: float | None = None
        self._done_lines = 0
        self._injected: list[int] = []  # Ns of the driver's own lines among the file's (M105)
        self.thermal_fault: tuple[str, str] | None = None  # (reason, raw line): stop and fail

    def started(self, now: float, first_n: int) -> None:
        self._t0 = now
        self._first_n = first_n

    def injected(self, n: int) -> None:
        """Line ``n`` is the driver's own (a temperature poll), not one of the file's."""
        self._injected.append(n)

    def finished(self, now: float) -> None:
        self._t1 = now

    def should_stop(self, closing: threading.Event) -> Callable[[], bool]:
        return lambda: closing.is_set() or self.cancel_requested.is_set()

    def wait_until_runnable(self, closing: threading.Event) -> bool:
        """Block while paused; False once cancelled or closing."""
        while self.pause_requested.is_set() and not self.cancel_requested.is_set():
            if closing.wait(0.05):
                return False
        return not (self.cancel_requested.is_set() or closing.is_set())

    def progress(self, acked_n: int | None = None, now: float | None = None) -> Progress:
        """Progress given the stream's last acknowledged N (None: as last computed)."""
        if acked_n is not None and self._t0 is not None:
            own = bisect.bisect_right(self._injected, acked_n)
            done = max(0, min(len(self.commands), acked_n - self._first_n + 1 - own))
            self._done_lines = max(self._done_lines, done)
        end = self._t1 if self._t1 is not None else (now or time.monotonic())
        elapsed = (end - self._t0) if self._t0 is not None else 0.0
        done_bytes = self._bytes_upto[self._done_lines]
        total = self._bytes_upto[-1]
        remaining = None
        if done_bytes and elapsed > 0:
            remaining = (total - done_bytes) * elapsed / done_bytes
        return Progress(
            lines_done=self._done_lines,
            lines_total=len(self.commands),
            bytes_done=done_bytes,
            bytes_total=total,
            elapsed_s=elapsed,
            remaining_s=remaining,
        )


@dataclass(frozen=True)
class ThermalLimits:
    """What the machine's profile allows its heaters while printing (°C, s).

    A heater that has reached its target and then stays more than ``margin_c`` below it for
    longer than ``margin_s`` has lost heat (a failed heater, a loose thermistor, a draft); one
    above its ``*_max_c`` is running away. Either ends the print. None: no maximum known.
    """

    margin_c: float = 15.0
    margin_s: float = 30.0
    hotend_max_c: float | None = None
    bed_max_c: float | None = None


class ThermalWatch:
    """Follows (actual, target) readings per heater; ``check`` says why to stop, if it must."""

    NAMES = {"T": "hotend", "B": "bed"}

    def __init__(self, limits: ThermalLimits) -> None:
        self.limits = limits
        self._target: dict[str, float] = {}
        self._reached: dict[str, bool] = {}
        self._below_since: dict[str, float | None] = {}

    def check(self, heater: str, actual_c: float, target_c: float, now: float) -> str | None:
        """One reading of ``heater`` ("T" hotend, "B" bed) at monotonic ``now``; the reason to
        stop the print, or None."""
        name = self.NAMES.get(heater, heater)
        limit = self.limits.hotend_max_c if heater == "T" else self.limits.bed_max_c
        if limit is not None and actual_c > limit:
            return f"{name} at {actual_c:.1f} °C is above the profile's maximum {limit:.0f} °C"
        if self._target.get(heater) != target_c:  # a new target: heating up is not a fault
            self._target[heater] = target_c
            self._reached[heater] = False
            self._below_since[heater] = None
        if target_c <= 0:
            return None
        low = actual_c < target_c - self.limits.margin_c
        if not low:
            self._reached[heater] = True
            self._below_since[heater] = None
            return None
        if not self._reached[heater]:
            return None
        since = self._below_since.get(heater)
        if since is None:
            self._below_since[heater] = now
        elif now - since > self.limits.margin_s:
            return (
                f"{name} at {actual_c:.1f} °C stayed more than {self.limits.margin_c:.0f} °C "
                f"below its target {target_c:.0f} °C for over {self.limits.margin_s:.0f} s"
            )
        return None
