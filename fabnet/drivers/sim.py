"""The ``sim`` driver: a time-scaled simulated printer or CNC router for demos and tests.

It "runs" a G-code file for the file's analysed duration divided by ``speed``, advancing
progress by bytes as time passes, and honours pause, resume and cancel. Heater targets follow
the file so telemetry looks like a real machine's; cancel leaves everything off.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fabnet.drivers.base import DriverError, DriverState, Progress, Status, Telemetry
from fabnet.errors import Conflict, DeviceError
from fabnet.gcode import Analysis, analyse

TICK_S = 0.05


class SimDriver:
    """A simulated machine. ``speed`` > 1 runs faster than the G-code's own estimate;
    ``fail_at_percent`` makes the job fail with a firmware-like error there (for tests)."""

    def __init__(
        self,
        speed: float = 60.0,
        min_duration_s: float = 0.5,
        fail_at_percent: float | None = None,
    ) -> None:
        self._speed = speed
        self._min_duration_s = min_duration_s
        self._fail_at_percent = fail_at_percent
        self._lock = threading.Lock()
        self._state = DriverState.DISCONNECTED
        self._error: DriverError | None = None
        self._bytes_total = 0
        self._done_s = 0.0  # simulated seconds of the job completed
        self._duration_s = 0.0  # simulated wall seconds the whole job takes
        self._hotend = (20.0, 0.0)
        self._bed = (20.0, 0.0)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def connect(self) -> None:
        with self._lock:
            self._state = DriverState.IDLE
            self._error = None

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        with self._lock:
            self._state = DriverState.DISCONNECTED

    def status(self) -> Status:
        with self._lock:
            fraction = self._done_s / self._duration_s if self._duration_s else 0.0
            remaining = max(self._duration_s - self._done_s, 0.0)
            return Status(
                state=self._state,
                progress=Progress(
                    bytes_done=int(self._bytes_total * min(fraction, 1.0)),
                    bytes_total=self._bytes_total,
                    elapsed_s=self._done_s,
                    remaining_s=remaining if self._state is DriverState.RUNNING else None,
                ),
                telemetry=Telemetry(hotend_c=self._hotend, bed_c=self._bed),
                error=self._error,
            )

    def start(self, gcode_file: Path, analysis: Analysis | None = None) -> None:
        """Run ``gcode_file`` for its analysed time. ``analysis``: the file's, already made
        by the agent while verifying it (issue 9: not parsed again); None analyses it here."""
        if analysis is None:
            analysis = analyse(gcode_file)
        try:
            size = gcode_file.stat().st_size
        except OSError as exc:
            raise DeviceError(f"cannot read {gcode_file}: {exc}") from exc
        with self._lock:
            if self._state not in (DriverState.IDLE, DriverState.DONE):
                raise Conflict(f"cannot start a job while the machine is {self._state.value}")
            self._bytes_total = size
            self._duration_s = max(analysis.time_s / self._speed, self._min_duration_s)
            self._done_s = 0.0
            self._hotend = (20.0, analysis.max_hotend_c or 0.0)
            self._bed = (20.0, analysis.max_bed_c or 0.0)
            self._state = DriverState.RUNNING
            self._error = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-driver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            with self._lock:
                if self._state is DriverState.RUNNING:
                    self._done_s = min(self._done_s + (now - last), self._duration_s)
                    self._hotend = (self._hotend[1], self._hotend[1])
                    self._bed = (self._bed[1], self._bed[1])
                    percent = 100.0 * self._done_s / self._duration_s
                    if self._fail_at_percent is not None and percent >= self._fail_at_percent:
                        self._fail("Error:Thermal Runaway, system stopped! Heater_ID: 0")
                        return
                    if self._done_s >= self._duration_s:
                        self._state = DriverState.DONE
                        self._cool_down()
                        return
                elif self._state is not DriverState.PAUSED:
                    return
            last = now

    def _fail(self, raw: str) -> None:
        self._state = DriverState.ERROR
        self._error = DriverError("simulated firmware error", raw=raw)
        self._cool_down()

    def _cool_down(self) -> None:
        self._hotend = (self._hotend[0], 0.0)
        self._bed = (self._bed[0], 0.0)

    def pause(self) -> None:
        with self._lock:
            if self._state is not DriverState.RUNNING:
                raise Conflict(f"cannot pause while the machine is {self._state.value}")
            self._state = DriverState.PAUSED

    def resume(self) -> None:
        with self._lock:
            if self._state is not DriverState.PAUSED:
                raise Conflict(f"cannot resume while the machine is {self._state.value}")
            self._state = DriverState.RUNNING

    def cancel(self) -> None:
        with self._lock:
            if self._state is DriverState.DISCONNECTED:
                raise DeviceError("simulated machine is not connected")
            self._state = DriverState.IDLE
            self._cool_down()
        self._stop.set()
