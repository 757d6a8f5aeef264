"""The driver seam: one interface over OctoPrint, Marlin serial, GRBL serial and the simulator.

A driver turns "run this file" into firmware traffic and reports what the machine does. It never
decides which task comes next. All methods are thread-safe; ``start`` returns at once and the
job runs on the driver's own thread(s).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class DriverState(enum.Enum):
    """What the machine is doing, as seen by its driver."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"  # connected, ready for a job
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    DONE = "done"  # the last job finished; goes back to IDLE on the next start
    ERROR = "error"  # see Status.error; needs a reconnect or a person


@dataclass(frozen=True)
class Progress:
    """Progress of the current job; times in seconds, None where unknown."""

    lines_done: int = 0
    lines_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    elapsed_s: float = 0.0
    remaining_s: float | None = None

    @property
    def percent(self) -> float:
        if self.bytes_total:
            return 100.0 * self.bytes_done / self.bytes_total
        if self.lines_total:
            return 100.0 * self.lines_done / self.lines_total
        return 0.0


@dataclass(frozen=True)
class Telemetry:
    """Temperatures in °C (actual, target), spindle in rpm, position in mm (machine coords)."""

    hotend_c: tuple[float, float] | None = None
    bed_c: tuple[float, float] | None = None
    spindle_rpm: float | None = None
    position_mm: tuple[float, float, float] | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DriverError:
    """An error the machine reported: our message plus the firmware's raw line when there is one."""

    message: str
    raw: str | None = None


@dataclass(frozen=True)
class Status:
    state: DriverState
    progress: Progress
    telemetry: Telemetry
    error: DriverError | None = None


class Driver(Protocol):
    """A connection to one machine. Raises DeviceError / DeviceTimeout from ``fabnet.errors``;
    raises Conflict when the machine's state forbids the action (e.g. start while running)."""

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def status(self) -> Status: ...

    def start(self, gcode_file: Path) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def cancel(self) -> None:
        """Stop the job and leave the machine safe (FDM: heaters and part fan off, head lifted;
        CNC: feed hold, spindle off, safe Z)."""
        ...
