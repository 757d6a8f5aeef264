"""GRBL 1.1 driver: character-counting streaming, feed hold / cycle start / soft reset, alarms.

The stop sequence and the safe-Z choice are in ``grbl_session``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fabnet.drivers.base import DriverError, DriverState, Progress, Status, Telemetry
from fabnet.drivers.grbl_link import GrblLink
from fabnet.drivers.grbl_protocol import (
    CYCLE_START,
    FEED_HOLD,
    RX_BUFFER_BYTES,
    GrblState,
    GrblStatus,
    JobLine,
    alarm_meaning,
    error_meaning,
    prepare_job,
)
from fabnet.drivers.grbl_session import (
    SessionPolicy,
    line_code,
    make_safe,
    require_unlocked,
    wake_up,
)
from fabnet.errors import Conflict, DeviceTimeout, FabnetError, InvalidInput, NotFound

log = logging.getLogger(__name__)

STALE_STATUS_S = 0.3  # a status report this soon after pause/resume may predate the command


def _hold_settled(status: GrblStatus) -> bool:
    """Not decelerating into a hold (Hold:1) nor stopping for a door that just opened (Door:2)."""
    if status.state is GrblState.HOLD:
        return status.substate == 0
    return not (status.state is GrblState.DOOR and status.substate == 2)


@dataclass
class _Job:
    lines: list[JobLine]
    started_at: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lines_done: int = 0
    bytes_done: int = 0
    finished_at: float | None = None

    @property
    def bytes_total(self) -> int:
        return sum(line.wire_bytes for line in self.lines)


class GrblDriver:
    """One GRBL 1.1 machine on a serial port. ``$X`` is sent only when ``allow_unlock`` is set.

    Times in seconds, lengths in mm. Raises DeviceError / DeviceTimeout for machine trouble,
    Conflict when the state forbids an action, GcodeError for lines GRBL cannot take.
    """

    def __init__(
        self,
        port: str,
        baud: int | None = 115200,
        allow_unlock: bool = False,
        *,
        safe_z_mm: float = 5.0,
        machine_safe_z_mm: float = -1.0,
        poll_interval_s: float = 0.2,
        response_timeout_s: float = 10.0,
        hold_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.port = port
        self.baud = baud or 115200  # the CLI passes None when --baud is not given
        self.allow_unlock = allow_unlock
        self.safe_z_mm = safe_z_mm
        self.machine_safe_z_mm = machine_safe_z_mm
        self.poll_interval_s = poll_interval_s
        self.response_timeout_s = response_timeout_s
        self.hold_timeout_s = hold_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()
        self._exchange = threading.RLock()  # held by whoever consumes GRBL's replies
        self._state = DriverState.DISCONNECTED
        self._error: DriverError | None = None
        self._job: _Job | None = None
        self._link: GrblLink | None = None
        self._homing_enabled = False
        self._changed_at = 0.0  # when pause/resume last changed the state

    # ---- connection ------------------------------------------------------------------

    def connect(self) -> None:
        """Open the port, wake GRBL, check its state; raises DeviceError if it is not usable."""
        with self._lock:
            if self._state not in (DriverState.DISCONNECTED, DriverState.ERROR):
                return
            self._state, self._error = DriverState.CONNECTING, None
        link = GrblLink(
            self.port,
            self.baud,
            poll_interval_s=self.poll_interval_s,
            on_status=self._on_status,
            on_poll=self._on_poll,
        )
        try:
            link.open()
            with self._exchange:
                wake_up(link, self.connect_timeout_s)
                modes = link.command("$G", self.response_timeout_s, expect_prefix="[GC:")
                log.info("GRBL on %s: %s", self.port, " ".join(modes))
                require_unlocked(link, self.allow_unlock, self.response_timeout_s)
                settings = link.command("$$", self.response_timeout_s)
                self._homing_enabled = "$22=1" in settings
                if link.wait_status(lambda s: True, self.response_timeout_s) is None:
                    raise DeviceTimeout(f"GRBL on {self.port} sent no status report")
            self._link = link
            link.start_polling()
        except FabnetError as exc:
            link.close()
            with self._lock:
                self._state = DriverState.DISCONNECTED
                self._error = DriverError(str(exc), getattr(exc, "raw", None))
            raise
        with self._lock:
            self._state = DriverState.IDLE

    def disconnect(self) -> None:
        """Stop talking to the machine. It does not stop a running job: cancel first."""
        with self._lock:
            job, link = self._job, self._link
            self._state, self._link = DriverState.DISCONNECTED, None
        if job is not None:
            job.stop.set()
        if link is not None:
            link.close()
        if job is not None and job.thread is not None:
            job.thread.join(timeout=2.0)

    # ---- status ----------------------------------------------------------------------

    def status(self) -> Status:
        with self._lock:
            return Status(self._state, self._progress(), self._telemetry(), self._error)

    def _progress(self) -> Progress:
        job = self._job
        if job is None:
            return Progress()
        elapsed = (job.finished_at or time.monotonic()) - job.started_at
        remaining = None
        if job.bytes_done:
            remaining = elapsed * (job.bytes_total - job.bytes_done) / job.bytes_done
        return Progress(
            lines_done=job.lines_done,
            lines_total=len(job.lines),
            bytes_done=job.bytes_done,
            bytes_total=job.bytes_total,
            elapsed_s=elapsed,
            remaining_s=remaining,
        )

    def _telemetry(self) -> Telemetry:
        link = self._link
        if link is None or link.status is None:
            return Telemetry()
        st, mpos = link.status, link.mpos
        extra = {"grbl_state": st.state_text, "feed_mm_min": f"{st.feed_mm_min or 0:g}"}
        if mpos is not None:
            extra["wpos"] = ",".join(f"{m - o:.3f}" for m, o in zip(mpos, link.wco, strict=True))
        if st.state is GrblState.DOOR:
            extra["door"] = "closed" if st.substate == 0 else "open"
        return Telemetry(spindle_rpm=st.spindle_rpm, position_mm=mpos, extra=extra)

    def _on_status(self, status: GrblStatus) -> None:
        """Reader thread: follow holds and doors GRBL reports on its own (door, hold button)."""
        now = time.monotonic()
        with self._lock:
            if now - self._changed_at < STALE_STATUS_S:
                return
            held = status.state in (GrblState.HOLD, GrblState.DOOR)
            if self._state is DriverState.RUNNING and held:
                self._state = DriverState.PAUSED
            elif self._state is DriverState.PAUSED and status.state is GrblState.RUN:
                self._state = DriverState.RUNNING

    def _on_poll(self) -> None:
        """Poller thread: GRBL answers ``?`` within milliseconds, so silence means trouble."""
        link = self._link
        if link is None or link.polling_since is None:
            return
        silent_s = time.monotonic() - max(link.status_at, link.polling_since)
        if silent_s <= self.response_timeout_s:
            return
        with self._lock:
            if self._state in (DriverState.ERROR, DriverState.DISCONNECTED):
                return
            message = (
                f"GRBL on {self.port} stopped answering: no status report for {silent_s:.1f} s"
            )
            self._state, self._error = DriverState.ERROR, DriverError(message)
            if self._job is not None:
                self._job.stop.set()
        log.error("%s", message)

    # ---- jobs ------------------------------------------------------------------------

    def start(self, gcode_file: Path) -> None:
        """Stream ``gcode_file`` on a thread; raises NotFound, GcodeError, Conflict."""
        path = Path(gcode_file)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise NotFound(f"G-code file {path} does not exist") from None
        lines = prepare_job(text.splitlines())
        if not lines:
            raise InvalidInput(f"G-code file {path} holds no commands")
        with self._lock:
            link = self._link
            if self._state not in (DriverState.IDLE, DriverState.DONE) or link is None:
                raise Conflict(f"cannot start a job: {self.port} is {self._state.value}")
            if link.status is None or link.status.state is not GrblState.IDLE:
                state = link.status.state_text if link.status else "unknown"
                raise Conflict(f"cannot start a job: GRBL on {self.port} reports {state}")
            job = _Job(lines)
            job.thread = threading.Thread(
                target=self._run_job, args=(job, link), name="grbl-job", daemon=True
            )
            self._job, self._state, self._error = job, DriverState.RUNNING, None
        log.info("streaming %s (%d lines) to %s", path, len(lines), self.port)
        job.thread.start()

    def _run_job(self, job: _Job, link: GrblLink) -> None:
        try:
            with self._exchange:
                for stale in link.drain_replies():
                    log.debug("dropping stale GRBL line %r", stale)
                if self._stream(job, link):
                    self._wait_job_idle(job, link)
        except FabnetError as exc:
            self._fail(f"streaming to {self.port} failed: {exc}", getattr(exc, "raw", None))
        except Exception:  # top of the job thread: report, never die silently
            log.exception("GRBL job thread failed")
            self._fail(f"internal error while streaming to {self.port}; see the log", None)

    def _stream(self, job: _Job, link: GrblLink) -> bool:
        """Character counting: lines in flight never exceed GRBL's 127-byte receive buffer.

        True when every line was acknowledged; False when stopped or failed.
        """
        in_flight: collections.deque[JobLine] = collections.deque()
        used = index = 0
        while not job.stop.is_set():
            while index < len(job.lines) and used + job.lines[index].wire_bytes <= RX_BUFFER_BYTES:
                line = job.lines[index]
                link.send_line(line.text)
                in_flight.append(line)
                used += line.wire_bytes
                index += 1
            if not in_flight:
                return True
            reply = link.next_reply(0.1)
            if reply is None:
                continue
            if reply == "ok":
                done = in_flight.popleft()
                used -= done.wire_bytes
                with self._lock:
                    job.lines_done += 1
                    job.bytes_done += done.wire_bytes
            elif reply.startswith("error:"):
                self._on_job_error(link, in_flight[0], reply)
                return False
            elif reply.startswith("ALARM:"):
                self._on_job_alarm(in_flight[0], reply)
                return False
            else:
                log.info("GRBL on %s: %s", self.port, reply)
        return False

    def _wait_job_idle(self, job: _Job, link: GrblLink) -> None:
        while not job.stop.is_set():
            if link.wait_status(lambda s: s.state is GrblState.IDLE, 0.5) is not None:
                with self._lock:
                    if self._state is DriverState.RUNNING and not job.stop.is_set():
                        self._state, job.finished_at = DriverState.DONE, time.monotonic()
                        log.info("job on %s done: %d lines", self.port, job.lines_done)
                return

    def _on_job_error(self, link: GrblLink, line: JobLine, reply: str) -> None:
        code = line_code(reply)
        message = f"GRBL {reply} ({error_meaning(code)}) on line {line.line_no}: {line.text}"
        self._fail(message, reply)
        try:
            make_safe(link, self._policy())
        except FabnetError as exc:
            log.error("making %s safe after %s failed: %s", self.port, reply, exc)
            with self._lock:
                self._error = DriverError(f"{message}; stopping the machine failed: {exc}", reply)

    def _on_job_alarm(self, line: JobLine, reply: str) -> None:
        # GRBL already stopped motion and spindle; an alarm needs a person (reset, home/unlock)
        message = (
            f"GRBL {reply} ({alarm_meaning(line_code(reply))}) while running line {line.line_no}: "
            f"{line.text}; reset and home or unlock the machine before the next job"
        )
        self._fail(message, reply)

    def _fail(self, message: str, raw: str | None) -> None:
        log.error("%s", message)
        with self._lock:
            self._state, self._error = DriverState.ERROR, DriverError(message, raw)
            if self._job is not None:
                self._job.stop.set()

    # ---- pause, resume, cancel ---------------------------------------------------------

    def _require_link(self) -> GrblLink:
        link = self._link
        if link is None:
            raise Conflict(f"{self.port} is not connected")
        return link

    def _policy(self) -> SessionPolicy:
        return SessionPolicy(
            allow_unlock=self.allow_unlock,
            homing_enabled=self._homing_enabled,
            safe_z_mm=self.safe_z_mm,
            machine_safe_z_mm=self.machine_safe_z_mm,
            response_timeout_s=self.response_timeout_s,
            hold_timeout_s=self.hold_timeout_s,
            connect_timeout_s=self.connect_timeout_s,
        )

    def pause(self) -> None:
        """Feed hold (``!``); raises Conflict unless a job is running."""
        with self._lock:
            link = self._require_link()
            if self._state is not DriverState.RUNNING:
                raise Conflict(f"cannot pause: {self.port} is {self._state.value}")
            self._state, self._changed_at = DriverState.PAUSED, time.monotonic()
        link.write(FEED_HOLD)

    def resume(self) -> None:
        """Cycle start (``~``) once the hold is complete; Conflict if the safety door is open."""
        with self._lock:
            link = self._require_link()
            if self._state is not DriverState.PAUSED:
                raise Conflict(f"cannot resume: {self.port} is {self._state.value}")
        status = link.wait_status(_hold_settled, self.hold_timeout_s)
        if status is None:
            raise DeviceTimeout(f"GRBL on {self.port} did not finish its feed hold")
        if status.state is GrblState.DOOR and status.substate != 0:
            raise Conflict(
                f"the safety door of {self.port} is open ({status.state_text}): close it"
            )
        link.write(CYCLE_START)
        with self._lock:
            self._state, self._changed_at = DriverState.RUNNING, time.monotonic()

    def cancel(self) -> None:
        """Feed hold, soft reset, spindle off, safe Z. Raises Conflict if no job is active and
        DeviceError if GRBL stays alarm-locked after the reset and unlocking is not allowed."""
        with self._lock:
            link = self._require_link()
            job = self._job
            if self._state not in (DriverState.RUNNING, DriverState.PAUSED) or job is None:
                raise Conflict(f"nothing to cancel: {self.port} is {self._state.value}")
            self._state = DriverState.CANCELLING
            job.stop.set()
        if job.thread is not None:
            job.thread.join(timeout=self.response_timeout_s)
        try:
            with self._exchange:
                make_safe(link, self._policy())
        except FabnetError as exc:
            self._fail(f"cancel on {self.port}: {exc}", getattr(exc, "raw", None))
            raise
        with self._lock:
            self._state, job.finished_at = DriverState.IDLE, time.monotonic()
        log.info("job on %s cancelled; spindle off, Z retracted", self.port)
