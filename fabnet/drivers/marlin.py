"""The Marlin serial driver: connect (wait out the board's reset), stream a G-code file as
numbered lines through ``MarlinStream``, report temperatures and progress, pause, resume and
cancel into a safe state. Raw traffic goes to the ``fabnet.serial.marlin`` logger at DEBUG.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import serial

from fabnet.drivers.base import DriverError, DriverState, Progress, Status, Telemetry
from fabnet.drivers.marlin_dialects import Capabilities, parse_m115
from fabnet.drivers.marlin_handshake import handshake
from fabnet.drivers.marlin_job import Job, ThermalLimits, ThermalWatch, load_commands
from fabnet.drivers.marlin_park import ModalState, ParkSettings, pause_parked
from fabnet.drivers.marlin_protocol import MarlinStream
from fabnet.errors import Conflict, DeviceError, DeviceTimeout, FabnetError

log = logging.getLogger(__name__)
wire_log = logging.getLogger("fabnet.serial.marlin")

_TEMP = re.compile(r"\b([TB]):\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)")
_POS = re.compile(r"^X:(-?[\d.]+) Y:(-?[\d.]+) Z:(-?[\d.]+)")
FINISH_MOVES = "M400"  # after a file's last line; the simulator counts it as the file's end


class MarlinDriver:
    """A Marlin board on a serial port. See ``fabnet.drivers.base.Driver`` for the contract.

    max_z_mm: the machine's Z travel; the lift on cancel stays below it (None: no bound known,
    lift ``lift_mm`` anyway). ok_timeout_s / max_retries bound how long a silent board is
    waited for before DeviceTimeout. thermal: the heaters' limits while printing; park: where
    a pause parks the head (both from the machine's profile, see ``registry``).
    """

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        *,
        max_z_mm: float | None = None,
        lift_mm: float = 5.0,
        ok_timeout_s: float = 10.0,
        max_retries: int = 3,
        connect_timeout_s: float = 15.0,
        autoreport_s: int = 2,
        window: int = 2,
        thermal: ThermalLimits | None = None,
        park: ParkSettings | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.max_z_mm = max_z_mm
        self.lift_mm = lift_mm
        self.connect_timeout_s = connect_timeout_s
        self.autoreport_s = autoreport_s
        self.ok_timeout_s = ok_timeout_s
        self.max_retries = max_retries
        self._window = window
        self._lock = threading.Lock()
        self._state = DriverState.DISCONNECTED
        self._error: DriverError | None = None
        self._telemetry = Telemetry()
        self._serial: serial.Serial | None = None
        self._stream: MarlinStream | None = None
        self._reader: threading.Thread | None = None
        self._closing = threading.Event()
        self._job: Job | None = None
        self._job_thread: threading.Thread | None = None
        self.capabilities = Capabilities()
        self.thermal = thermal or ThermalLimits()
        self.park = park or ParkSettings()
        self._watch: ThermalWatch | None = None

    # --- connection -----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the port, wait for the board, reset line numbering. Raises DeviceError if the
        port cannot be opened, DeviceTimeout if the board never answers."""
        with self._lock:
            if self._state not in (DriverState.DISCONNECTED, DriverState.ERROR):
                raise Conflict(f"marlin driver on {self.port} is already {self._state.value}")
            self._state = DriverState.CONNECTING
            self._error = None
        try:
            self._serial = serial.Serial(self.port, self.baud, timeout=0.1, write_timeout=5.0)
        except (serial.SerialException, OSError) as exc:
            self._set_state(DriverState.DISCONNECTED)
            raise DeviceError(f"cannot open serial port {self.port}: {exc}") from exc
        self._closing.clear()
        self._stream = MarlinStream(
            self._write,
            window=self._window,
            ok_timeout_s=self.ok_timeout_s,
            max_retries=self.max_retries,
        )
        self._reader = threading.Thread(target=self._read_loop, name="marlin-rx", daemon=True)
        self._reader.start()
        try:
            handshake(self._stream, self.port, self.connect_timeout_s)
            self.capabilities = self._read_capabilities(self._stream)
            if self.autoreport_s > 0 and self.capabilities.autoreport_temp:
                self._run_commands([f"M155 S{self.autoreport_s}"])
        except FabnetError as exc:
            self._fail(exc)
            self.disconnect()
            raise
        self._set_state(DriverState.IDLE)
        log.info("marlin: connected on %s at %d baud", self.port, self.baud)

    def _read_capabilities(self, stream: MarlinStream) -> Capabilities:
        """Send M115 and read the firmware's name and ``Cap:`` lines (see marlin_dialects)."""
        with stream.cond:
            stream.captured = []
        try:
            self._run_commands(["M115"])
        finally:
            with stream.cond:
                lines, stream.captured = stream.captured or [], None
        caps = parse_m115(lines)
        with stream.cond:
            stream.resend_with_ok = caps.resend_with_ok
        log.info("marlin on %s: %s, capabilities %s", self.port, caps.firmware, sorted(caps.caps))
        return caps

    def disconnect(self) -> None:
        """Stop any job thread, close the port; the firmware keeps whatever it was doing."""
        self._closing.set()
        job_thread = self._job_thread
        if job_thread is not None and job_thread is not threading.current_thread():
            job_thread.join(timeout=5.0)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        if self._serial is not None:
            self._serial.close()
        with self._lock:
            if self._state != DriverState.ERROR:
                self._state = DriverState.DISCONNECTED

    # --- status ---------------------------------------------------------------------------
    def status(self) -> Status:
        with self._lock:
            job = self._job
            progress = Progress() if job is None else job.progress()
            if job is not None and self._stream is not None:
                progress = job.progress(self._stream.acked_n)
            return Status(self._state, progress, self._telemetry, self._error)

    @property
    def state(self) -> DriverState:
        with self._lock:
            return self._state

    def _set_state(self, state: DriverState) -> None:
        with self._lock:
            if self._state != DriverState.ERROR or state == DriverState.DISCONNECTED:
                self._state = state

    def _fail(self, exc: FabnetError) -> None:
        raw = exc.raw if isinstance(exc, DeviceError) else None
        log.error("marlin on %s: %s", self.port, exc)
        with self._lock:
            self._state = DriverState.ERROR
            self._error = DriverError(str(exc), raw)

    # --- serial I/O -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        assert self._serial is not None
        wire_log.debug(">> %s", data.decode("ascii", errors="replace").rstrip())
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"writing to {self.port} failed: {exc}") from exc

    def _read_loop(self) -> None:
        assert self._serial is not None and self._stream is not None
        stream = self._stream
        while not self._closing.is_set():
            try:
                raw = self._serial.readline()
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._closing.is_set():
                    stream.fail(DeviceError(f"reading {self.port} failed: {exc}"))
                return
            if not raw:
                continue
            line = raw.decode("ascii", errors="replace").strip()
            wire_log.debug("<< %s", line)
            try:
                self._telemetry_from(line)
                stream.on_line(line)
            except Exception:  # one garbled line must not end the reader
                log.exception("marlin: could not handle line %r", line)

    def _telemetry_from(self, line: str) -> None:
        temps = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in _TEMP.finditer(line)}
        pos = _POS.match(line)
        if not temps and pos is None:
            return
        self._watch_heaters(temps, line)
        with self._lock:
            t = self._telemetry
            self._telemetry = Telemetry(
                hotend_c=temps.get("T", t.hotend_c),
                bed_c=temps.get("B", t.bed_c),
                position_mm=(
                    (float(pos.group(1)), float(pos.group(2)), float(pos.group(3)))
                    if pos
                    else t.position_mm
                ),
                extra=t.extra,
            )

    def _watch_heaters(self, temps: dict[str, tuple[float, float]], line: str) -> None:
        """While a job runs, a heater out of its limits stops it (the job thread makes it safe:
        this is the reader thread, which must keep delivering the oks that needs)."""
        with self._lock:
            job, watch = self._job, self._watch
            running = self._state in (DriverState.RUNNING, DriverState.PAUSED)
        if job is None or watch is None or not running or job.thermal_fault is not None:
            return
        now = time.monotonic()
        for heater, (actual, target) in temps.items():
            reason = watch.check(heater, actual, target, now)
            if reason is not None:
                log.error("marlin on %s: %s; stopping the print", self.port, reason)
                job.thermal_fault = (reason, line)
                job.cancel_requested.set()
                self._break_waits()
                return

    def _break_waits(self) -> None:
        if self.capabilities.emergency_parser and self._stream is not None:
            # the emergency parser acts on these as they arrive: M108 ends a heater wait,
            # M410 drops the planned moves; without it they would wait their turn
            self._stream.send_unnumbered("M108")
            self._stream.send_unnumbered("M410")

    def _run_commands(self, commands: list[str], give_up: Callable[[], bool] | None = None) -> None:
        """Send ``commands`` and wait until every one is acknowledged."""
        assert self._stream is not None
        for cmd in commands:
            self._stream.wait_room(give_up)
            self._stream.submit(cmd)
        self._stream.wait_all_acked(give_up)

    # --- jobs -----------------------------------------------------------------------------
    def start(self, gcode_file: Path) -> None:
        """Start streaming ``gcode_file``; returns at once. Raises Conflict unless idle/done,
        InvalidInput / NotFound for an unreadable file."""
        commands = load_commands(gcode_file)
        with self._lock:
            if self._state not in (DriverState.IDLE, DriverState.DONE):
                raise Conflict(f"marlin on {self.port} is {self._state.value}; cannot start")
            self._job = Job(gcode_file.name, commands)
            self._watch = ThermalWatch(self.thermal)
            self._state = DriverState.RUNNING
        self._job_thread = threading.Thread(target=self._run_job, name="marlin-job", daemon=True)
        self._job_thread.start()

    def _run_job(self) -> None:
        assert self._stream is not None and self._job is not None
        stream, job = self._stream, self._job
        try:
            stream.active = False
            # M110 N0: the file's first line is N1
            handshake(stream, self.port, self.connect_timeout_s)
            job.started(time.monotonic(), stream.next_n)
            poll_s = 0 if self.capabilities.autoreport_temp else self.autoreport_s
            next_poll = time.monotonic() + poll_s
            modes = ModalState()
            for cmd in job.commands:
                if job.pause_requested.is_set() and not self._pause_parked(job, modes):
                    break
                if not stream.wait_room(job.should_stop(self._closing)):
                    break
                if poll_s > 0 and time.monotonic() >= next_poll:
                    job.injected(stream.submit("M105"))  # no auto-report: ask for temperatures
                    next_poll = time.monotonic() + poll_s
                    if not stream.wait_room(job.should_stop(self._closing)):
                        break
                stream.submit(cmd)
                modes.follow(cmd)
                job.sent += 1
            stream.wait_all_acked(lambda: self._closing.is_set())
            if job.sent == len(job.commands) and not self._stopping(job):
                # the last ok means "buffered", not "done": M400 answers once every move has
                # finished, so DONE is reported when the machine has physically finished
                self._run_commands([FINISH_MOVES], job.should_stop(self._closing))
            if job.cancel_requested.is_set():
                self._set_state(DriverState.CANCELLING)
                self._make_safe()
                if job.thermal_fault is not None:
                    reason, raw = job.thermal_fault
                    raise DeviceError(f"marlin: thermal fault: {reason}", raw=raw)
                self._set_state(DriverState.IDLE)
            elif not self._closing.is_set():
                self._set_state(DriverState.DONE)
        except FabnetError as exc:
            self._fail(exc)
        finally:
            job.finished(time.monotonic())

    def _pause_parked(self, job: Job, modes: ModalState) -> bool:
        assert self._stream is not None

        def position() -> tuple[float, float, float] | None:
            with self._lock:
                return self._telemetry.position_mm

        where = f"marlin on {self.port}"
        return pause_parked(job, self._stream, self.park, self.max_z_mm, position, modes,
                            self._closing, where)  # fmt: skip

    def _stopping(self, job: Job) -> bool:
        return job.cancel_requested.is_set() or self._closing.is_set()

    def pause(self) -> None:
        """Finish the buffered moves, retract, lift Z (within ``max_z_mm``) and park, heaters
        kept; ``resume`` brings the head back and the file goes on."""
        with self._lock:
            if self._state != DriverState.RUNNING or self._job is None:
                raise Conflict(f"marlin on {self.port} is {self._state.value}; cannot pause")
            self._job.pause_requested.set()
            self._state = DriverState.PAUSED

    def resume(self) -> None:
        with self._lock:
            if self._state != DriverState.PAUSED or self._job is None:
                raise Conflict(f"marlin on {self.port} is {self._state.value}; cannot resume")
            self._job.pause_requested.clear()
            self._state = DriverState.RUNNING

    def cancel(self, timeout_s: float = 60.0) -> None:
        """Stop sending the file, then heaters and fan off, lift Z within bounds, motors off.
        Waits up to ``timeout_s`` for that; raises DeviceTimeout if it did not finish."""
        with self._lock:
            state, job, thread = self._state, self._job, self._job_thread
        if state in (DriverState.RUNNING, DriverState.PAUSED) and job is not None:
            self._set_state(DriverState.CANCELLING)
            job.cancel_requested.set()
            self._break_waits()
            if thread is not None:
                thread.join(timeout_s)
                if thread.is_alive():
                    raise DeviceTimeout(f"marlin on {self.port}: cancel did not finish")
        elif state in (DriverState.IDLE, DriverState.DONE):
            self._make_safe()
        else:
            raise Conflict(f"marlin on {self.port} is {state.value}; cannot cancel")

    def _make_safe(self) -> None:
        self._run_commands(["M104 S0", "M140 S0", "M107", "M114"])
        with self._lock:
            position = self._telemetry.position_mm
        lift = self.lift_mm
        if self.max_z_mm is not None and position is not None:
            lift = min(lift, self.max_z_mm - position[2])
        if lift > 0:
            self._run_commands(["G91", f"G1 Z{lift:.2f} F600", "G90"])
        self._run_commands(["M84"])
        log.info("marlin on %s: machine left safe (heaters off, fan off, Z +%.2f)", self.port, lift)
