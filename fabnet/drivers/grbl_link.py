"""The serial side of the GRBL driver: port, reader thread, ``?`` poller, ordered replies.

Status reports are consumed here (latest kept, waiters woken); every other line (``ok``,
``error:N``, ``ALARM:N``, ``[MSG:...]``, banner) is queued in arrival order for one consumer.
Raw traffic is logged on ``fabnet.serial.grbl`` at DEBUG.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import serial

from fabnet.drivers.grbl_protocol import (
    STATUS_QUERY,
    GrblState,
    GrblStatus,
    Vec3,
    alarm_meaning,
    error_meaning,
    parse_status,
)
from fabnet.errors import DeviceError, DeviceTimeout

log = logging.getLogger(__name__)
wire = logging.getLogger("fabnet.serial.grbl")

SEEN_LINES_KEPT = 20  # first lines kept to tell the maker what answered when it is not GRBL


class GrblLink:
    """One open serial port to a GRBL 1.1 board. Thread-safe; one thread consumes replies."""

    def __init__(
        self,
        port: str,
        baud: int,
        *,
        poll_interval_s: float = 0.2,
        on_status: Callable[[GrblStatus], None] | None = None,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.poll_interval_s = poll_interval_s
        self._on_status = on_status
        self._on_poll = on_poll
        self._serial: serial.Serial | None = None
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: queue.Queue[str] = queue.Queue()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.status: GrblStatus | None = None
        self.status_at = 0.0  # monotonic time of the last status report
        self.wco: Vec3 = (0.0, 0.0, 0.0)
        self.mpos: Vec3 | None = None
        self.banner_count = 0
        self.banner = ""
        self.last_alarm: str | None = None
        self.seen_lines: list[str] = []
        self.polling_since: float | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and start the reader; raises DeviceError if the port cannot be opened."""
        try:
            self._serial = serial.Serial(self.port, self.baud, timeout=0.05, write_timeout=2.0)
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"cannot open serial port {self.port}: {exc}") from exc
        self._closing.clear()
        self._start_thread(self._read_loop, "grbl-reader")

    def start_polling(self) -> None:
        self.polling_since = time.monotonic()
        self._start_thread(self._poll_loop, "grbl-poller")

    def close(self) -> None:
        self._closing.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        self._threads.clear()
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        self.polling_since = None

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ---- writing -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write raw bytes (a line or a realtime command); raises DeviceError on I/O failure."""
        port = self._serial
        if port is None:
            raise DeviceError(f"serial port {self.port} is not open")
        try:
            with self._write_lock:
                port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"writing to {self.port} failed: {exc}") from exc
        if data != STATUS_QUERY:
            wire.debug(">> %r", data)

    def send_line(self, text: str) -> None:
        self.write(text.encode("ascii") + b"\n")

    # ---- reading -----------------------------------------------------------------------

    def _read_loop(self) -> None:
        buffer = bytearray()
        while not self._closing.is_set():
            port = self._serial
            if port is None:
                return
            try:
                chunk = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._closing.is_set():
                    log.error("reading %s failed: %s", self.port, exc)
                return
            buffer.extend(chunk)
            while b"\n" in buffer:
                raw, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                line = raw.decode("ascii", errors="replace").strip()
                if line:
                    try:
                        self._on_line(line)
                    except Exception:  # one bad line must not kill the reader thread
                        log.exception("GRBL reader failed on %r", line)

    def _on_line(self, line: str) -> None:
        if line.startswith("<"):
            try:
                status = parse_status(line)
            except (ValueError, KeyError, IndexError):
                log.warning("unreadable GRBL status report %r", line)
                return
            self._update_status(status)
            return
        wire.debug("<< %s", line)
        with self._cond:
            if len(self.seen_lines) < SEEN_LINES_KEPT:
                self.seen_lines.append(line)
            if line.startswith("Grbl "):
                self.banner_count += 1
                self.banner = line
            elif line.startswith("ALARM:"):
                self.last_alarm = line
            self._cond.notify_all()
        self._replies.put(line)

    def _update_status(self, status: GrblStatus) -> None:
        with self._cond:
            if status.wco is not None:
                self.wco = status.wco
            if status.mpos is not None:
                self.mpos = status.mpos
            elif status.wpos is not None:
                w, o = status.wpos, self.wco
                self.mpos = (w[0] + o[0], w[1] + o[1], w[2] + o[2])
            self.status = status
            self.status_at = time.monotonic()
            self._cond.notify_all()
        if self._on_status is not None:
            self._on_status(status)

    def _poll_loop(self) -> None:
        while not self._closing.wait(self.poll_interval_s):
            try:
                self.write(STATUS_QUERY)
            except DeviceError as exc:
                log.error("status poll failed: %s", exc)
            if self._on_poll is not None:
                try:
                    self._on_poll()
                except Exception:  # the poller must keep polling
                    log.exception("GRBL poll callback failed")

    # ---- waiting -----------------------------------------------------------------------

    def wait_status(
        self, predicate: Callable[[GrblStatus], bool], timeout_s: float
    ) -> GrblStatus | None:
        """Wait for a status report newer than this call that satisfies ``predicate``."""
        since = time.monotonic()
        deadline = since + timeout_s
        self.write(STATUS_QUERY)
        with self._cond:
            while True:
                status = self.status
                if status is not None and self.status_at > since and predicate(status):
                    return status
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, self.poll_interval_s))
                if self.polling_since is None:
                    self.write(STATUS_QUERY)  # nobody polls yet: ask again ourselves

    def wait_banner(self, count_before: int, timeout_s: float) -> str | None:
        """Wait until more than ``count_before`` banners were seen; the banner line or None."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.banner_count <= count_before:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self.banner

    def next_reply(self, timeout_s: float) -> str | None:
        try:
            return self._replies.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def drain_replies(self) -> list[str]:
        lines: list[str] = []
        while True:
            try:
                lines.append(self._replies.get_nowait())
            except queue.Empty:
                return lines

    def command(self, text: str, timeout_s: float, expect_prefix: str | None = None) -> list[str]:
        """Send one line, return the ``[...]``/``$`` lines before its ``ok``.

        With ``expect_prefix``, ``ok`` and ``ALARM:`` lines before a line with that prefix are
        stale (left over from before a reset or wake-up): skipped, alarms kept in the messages. Raises DeviceError on error:N or
        ALARM:N and DeviceTimeout when no ``ok`` arrives within ``timeout_s``.
        """
        self.send_line(text)
        deadline = time.monotonic() + timeout_s
        messages: list[str] = []
        waiting_for_expected = expect_prefix is not None
        while True:
            line = self.next_reply(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise DeviceTimeout(f"GRBL on {self.port} did not answer {text!r} in {timeout_s} s")
            if line == "ok":
                if not waiting_for_expected:
                    return messages
            elif line.startswith("error:"):
                code = int(line[6:]) if line[6:].isdigit() else -1
                raise DeviceError(f"GRBL refused {text!r}: {line} ({error_meaning(code)})", line)
            elif line.startswith("ALARM:") and not waiting_for_expected:
                code = int(line[6:]) if line[6:].isdigit() else -1
                raise DeviceError(f"GRBL raised {line} ({alarm_meaning(code)})", line)
            else:
                messages.append(line)
                if expect_prefix is not None and line.startswith(expect_prefix):
                    waiting_for_expected = False

    def in_state(self, *states: GrblState) -> bool:
        with self._cond:
            return self.status is not None and self.status.state in states
