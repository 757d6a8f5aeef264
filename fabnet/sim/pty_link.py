"""A pseudo-terminal paced like a UART, and the base class firmware simulators build on.

The host opens ``link.path`` with ``serial.Serial(path, baud)`` exactly as it would open a board.
Bytes travel at ``baud / 10`` bytes per second in each direction (8N1: 10 bits a byte), so at
115200 baud the link carries 11,520 B/s however fast either end is.

Interface used by every simulator (stable)::

    class MyFirmware(SerialFirmware):
        def on_start(self) -> None: ...            # after the link is up (print a banner)
        def on_line(self, line: str) -> None: ...  # one complete line, without CR/LF
        # or override on_bytes(data) to see raw bytes first (GRBL realtime commands)
    fw = MyFirmware(baud=115200)
    path = fw.start()        # "/dev/pts/N"
    fw.send_line("ok")      # paced to the host, "\\n" appended
    fw.close()
"""

from __future__ import annotations

import collections
import logging
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10  # start bit + 8 data bits + stop bit
CHUNK_BYTES = 32  # pacing granularity: at 115200 baud one chunk is 2.8 ms of wire time
MAX_CATCH_UP_S = 0.005  # a late thread may catch up this much on a backlogged wire


def link_bytes_per_s(baud: int) -> float:
    """Capacity of one direction of a UART at ``baud`` bit/s, in bytes per second."""
    return baud / BITS_PER_BYTE


class _Pacer:
    """Hands out the times at which bytes finish crossing the wire (one per direction)."""

    def __init__(self, bytes_per_s: float) -> None:
        self._byte_s = 1.0 / bytes_per_s
        self._free_at = 0.0  # monotonic time the wire is next idle

    def done_at(self, n_bytes: int, backlogged: bool) -> float:
        """``backlogged``: the bytes were already waiting when the wire went idle, so they
        follow on without a gap (the thread's own wake-up delay must not idle the wire)."""
        now = time.monotonic()
        if backlogged and now - self._free_at < MAX_CATCH_UP_S:
            start = self._free_at
        else:
            start = max(now, self._free_at)
        self._free_at = start + n_bytes * self._byte_s
        return self._free_at


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


class PtyLink:
    """One pty pair. The firmware side owns the master fd; the host opens ``path`` (the slave).

    ``on_bytes`` is called on the link's reader thread with each chunk as it finishes arriving.
    ``paced=False`` delivers bytes as fast as the pty allows (for tests of logic only).
    Raises OSError if no pty can be allocated.
    """

    def __init__(
        self,
        on_bytes: Callable[[bytes], None],
        baud: int = 115200,
        *,
        paced: bool = True,
        name: str = "pty",
    ) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be > 0, got {baud}")
        self.baud = baud
        self.bytes_per_s = link_bytes_per_s(baud)
        self._on_bytes = on_bytes
        self._paced = paced
        self._name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)  # no echo, no CR/LF translation, 8 bits
        self.path = os.ttyname(self._slave)
        self._rx_pacer = _Pacer(self.bytes_per_s)
        self._tx_pacer = _Pacer(self.bytes_per_s)
        self._tx: collections.deque[bytes] = collections.deque()
        self._tx_cond = threading.Condition()
        self._closed = threading.Event()
        self.rx_bytes = 0  # bytes received from the host so far
        self.tx_bytes = 0  # bytes written to the host so far
        self._threads = [
            threading.Thread(target=self._read_loop, name=f"{name}-rx", daemon=True),
            threading.Thread(target=self._write_loop, name=f"{name}-tx", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the host; it arrives at the link's pace. Never blocks."""
        if data and not self._closed.is_set():
            with self._tx_cond:
                self._tx.append(data)
                self._tx_cond.notify()

    def tx_pending(self) -> int:
        """Bytes queued towards the host that have not yet crossed the wire."""
        with self._tx_cond:
            return sum(len(chunk) for chunk in self._tx)

    def discard_tx(self) -> None:
        """Drop bytes not yet sent to the host (a board reset loses its UART buffer)."""
        with self._tx_cond:
            self._tx.clear()

    def close(self) -> None:
        """Stop both threads and close both fds; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._tx_cond:
            self._tx_cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.0)
                backlogged = bool(ready)
                if not ready:
                    ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, CHUNK_BYTES)
            except OSError:
                if not self._closed.is_set():
                    log.exception("%s: reading the pty failed", self._name)
                return
            if self._paced:
                _sleep_until(self._rx_pacer.done_at(len(data), backlogged))
            self.rx_bytes += len(data)
            try:
                self._on_bytes(data)
            except Exception:  # a firmware bug must not kill the link silently
                log.exception("%s: firmware failed on %r", self._name, data)

    def _next_tx_chunk(self) -> tuple[bytes, bool] | None:
        """The next chunk for the host and whether it was already waiting."""
        with self._tx_cond:
            backlogged = bool(self._tx)
            while not self._tx and not self._closed.is_set():
                self._tx_cond.wait(0.1)
            if self._closed.is_set():
                return None
            head = self._tx.popleft()
            if len(head) > CHUNK_BYTES:
                self._tx.appendleft(head[CHUNK_BYTES:])
                head = head[:CHUNK_BYTES]
            return head, backlogged

    def _write_loop(self) -> None:
        while True:
            item = self._next_tx_chunk()
            if item is None:
                return
            chunk, backlogged = item
            if self._paced:
                _sleep_until(self._tx_pacer.done_at(len(chunk), backlogged))
            self.tx_bytes += len(chunk)
            try:
                os.write(self._master, chunk)
            except OSError:
                if not self._closed.is_set():
                    log.exception("%s: writing the pty failed", self._name)
                return


class LineSplitter:
    """Turns a byte stream into lines; CR, LF and CRLF all end a line; empty lines are dropped."""

    def __init__(self, max_line: int = 256) -> None:
        self._buf = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        for byte in data:
            if byte in (0x0A, 0x0D):
                if self._buf:
                    lines.append(self._buf.decode("ascii", errors="replace"))
                    self._buf.clear()
            elif len(self._buf) < self._max_line:
                self._buf.append(byte)
        return lines

    def clear(self) -> None:
        self._buf.clear()


class SerialFirmware:
    """Base of a simulated firmware on a ``PtyLink``; subclasses implement ``on_line``.

    Threading: ``on_bytes`` / ``on_line`` run on the link's reader thread; keep them short and
    hand work to the firmware's own thread if it blocks.
    """

    def __init__(self, baud: int = 115200, *, paced: bool = True) -> None:
        self.baud = baud
        self.paced = paced
        self._link: PtyLink | None = None
        self._splitter = LineSplitter()

    @property
    def path(self) -> str:
        """The device path the host opens; raises RuntimeError before ``start``."""
        if self._link is None:
            raise RuntimeError("simulator not started: call start() first")
        return self._link.path

    @property
    def link(self) -> PtyLink:
        if self._link is None:
            raise RuntimeError("simulator not started: call start() first")
        return self._link

    def start(self) -> str:
        """Open the pty, start the firmware, return the device path."""
        if self._link is None:
            self._link = PtyLink(
                self.on_bytes, self.baud, paced=self.paced, name=type(self).__name__
            )
            self.on_start()
        return self._link.path

    def close(self) -> None:
        """Stop the firmware and close the pty; idempotent."""
        self.on_close()
        if self._link is not None:
            self._link.close()

    def send_bytes(self, data: bytes) -> None:
        if self._link is not None:
            self._link.write(data)

    def send_line(self, text: str) -> None:
        """Send one line to the host (``\\n`` appended), paced by the link."""
        self.send_bytes(text.encode("ascii", errors="replace") + b"\n")

    def on_bytes(self, data: bytes) -> None:
        """Raw bytes from the host; the default splits them into lines for ``on_line``."""
        for line in self._splitter.feed(data):
            self.on_line(line)

    def on_line(self, line: str) -> None:
        raise NotImplementedError

    def on_start(self) -> None:
        """Called once the pty exists; print a banner here."""

    def on_close(self) -> None:
        """Called before the pty closes; stop the firmware's threads here."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
