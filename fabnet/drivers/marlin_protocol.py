"""Marlin's host protocol: numbered, checksummed lines in flight, acknowledgements, resends and
timeouts. ``MarlinStream`` owns that state; the driver feeds it every line the firmware prints.

Exactly-once: the firmware runs a line only if its N is last N + 1, so the stream may always
re-send. A missing ``ok`` is recovered after ``ok_timeout_s`` by re-sending the oldest
unacknowledged line: if the firmware had it, it answers ``Error:Line Number is not Last Line
Number+1, Last Line: L`` / ``Resend: L+1`` and runs nothing, which tells us where it is.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from fabnet.drivers.marlin_dialects import OK_LINE_NUMBER, RESEND, SKIP, LineKind, classify
from fabnet.errors import DeviceError, DeviceTimeout, FabnetError

log = logging.getLogger(__name__)

_OK_B = re.compile(r"\bB(\d+)")
POLL_S = 0.02


def checksum(text: str) -> int:
    """XOR of the bytes of ``text`` (everything before the ``*``)."""
    value = 0
    for byte in text.encode("ascii", errors="replace"):
        value ^= byte
    return value


def frame(n: int, cmd: str) -> str:
    """``N<n> <cmd>*<checksum>`` with the newline."""
    body = f"N{n} {cmd}"
    return f"{body}*{checksum(body)}\n"


def strip_gcode(line: str) -> str:
    """The command part of a G-code line: no ``;`` comment, no surrounding blanks, no ``*``."""
    return line.split(";", 1)[0].split("*", 1)[0].strip()


class MarlinStream:
    """Numbered lines and their acknowledgements. Thread-safe: the serial reader calls
    ``on_line``, any thread calls ``submit`` / ``wait_*``; sending happens under the lock.

    window: lines allowed in flight before ADVANCED_OK reveals the firmware's buffer
    (``B`` + 1 of an idle ``ok``), capped at ``max_window``.
    """

    def __init__(
        self,
        write: Callable[[bytes], None],
        *,
        window: int = 2,
        max_window: int = 8,
        ok_timeout_s: float = 10.0,
        max_retries: int = 3,
    ) -> None:
        self._write = write
        self.window = window
        self.max_window = max_window
        self.ok_timeout_s = ok_timeout_s
        self.max_retries = max_retries
        self.cond = threading.Condition()
        self.failure: FabnetError | None = None
        self.oks_seen = 0
        self.starts_seen = 0
        self.busy_seen = 0
        self.resend_with_ok = True  # Smoothieware's "rs N<n>" comes without an ok
        self.captured: list[str] | None = None  # other lines kept while not None (M115)
        self.active = False  # numbering in use: a "start" now means an unexpected reset
        self._reset_counters(1)

    def _reset_counters(self, next_n: int) -> None:
        self._history: dict[int, str] = {}
        self.next_n = next_n  # N the next submitted line gets
        self._send_ptr = next_n  # N the next line put on the wire gets
        self._sent_max = next_n - 1
        self.acked_n = next_n - 1  # every line <= acked_n has run (its ok came)
        self.accepted_n = next_n - 1  # every line <= accepted_n is in the firmware
        self._pending_oks = 0  # oks owed for lines on the wire
        self._swallow_oks = 0  # oks that answer a Resend, not a line
        self._unnumbered_oks = 0  # oks owed to lines sent without N (M108, M410)
        self._resend_point = 0
        self._ignore_resends = 0
        self._pending_error: str | None = None  # an Error: line not in the tables, judged next
        self._last_heard = time.monotonic()
        self._retries = 0

    # --- sending ----------------------------------------------------------------------------
    def send_raw(self, text: str) -> None:
        """Write one line outside the numbering (e.g. ``N0 M110 N0`` hello)."""
        with self.cond:
            self._write(text.encode("ascii"))

    def restart_numbering(self) -> None:
        """After ``M110 N0`` was acknowledged: the next line is N1."""
        with self.cond:
            self._reset_counters(1)
            self.active = True

    def submit(self, cmd: str) -> int:
        """Queue ``cmd`` for sending; returns its N. Sends at once when the window allows."""
        with self.cond:
            self._raise_failure()
            n = self.next_n
            self._history[n] = cmd
            self.next_n += 1
            self._pump()
            return n

    def send_unnumbered(self, cmd: str) -> None:
        """Write ``cmd`` without N or checksum (an emergency-parser command such as M108): the
        firmware also queues it and answers an ok, which must not acknowledge a numbered line."""
        with self.cond:
            self._write(f"{cmd}\n".encode("ascii"))
            self._pending_oks += 1
            self._unnumbered_oks += 1

    def unacked(self) -> int:
        with self.cond:
            return self.next_n - 1 - self.acked_n

    def wait_for(
        self, predicate: Callable[[], bool], give_up: Callable[[], bool] | None = None
    ) -> bool:
        """Block until ``predicate()`` (called under the lock); False if ``give_up()`` first.
        Raises DeviceError / DeviceTimeout once the stream has failed."""
        with self.cond:
            while True:
                self._raise_failure()
                if predicate():
                    return True
                if give_up is not None and give_up():
                    return False
                self._check_timeout(time.monotonic())
                self.cond.wait(POLL_S)

    def wait_room(self, give_up: Callable[[], bool] | None = None) -> bool:
        """Wait until fewer than ``window`` submitted lines are unacknowledged."""
        return self.wait_for(lambda: self.next_n - 1 - self.acked_n < self.window, give_up)

    def wait_all_acked(self, give_up: Callable[[], bool] | None = None) -> bool:
        return self.wait_for(self._all_done, give_up)

    def _all_done(self) -> bool:
        # accepted and no ok owed: a line whose ok was lost still ran (the firmware said so)
        last = self.next_n - 1
        return self.acked_n >= last or (self.accepted_n >= last and self._pending_oks == 0)

    def fail(self, exc: FabnetError) -> None:
        with self.cond:
            if self.failure is None:
                log.error("marlin stream failed: %s", exc)
                self.failure = exc
            self.cond.notify_all()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _pump(self) -> None:
        while (
            self.failure is None
            and self._send_ptr < self.next_n
            and self._pending_oks < self.window
        ):
            if self._pending_oks == 0:
                self._last_heard = time.monotonic()  # the timeout runs from the first send
            self._write(frame(self._send_ptr, self._history[self._send_ptr]).encode("ascii"))
            self._sent_max = max(self._sent_max, self._send_ptr)
            self._send_ptr += 1
            self._pending_oks += 1

    def _check_timeout(self, now: float) -> None:
        in_flight = self._pending_oks > 0 or self.accepted_n < self._sent_max
        if not in_flight or now - self._last_heard < self.ok_timeout_s:
            return
        self._retries += 1
        if self._retries > self.max_retries:
            self.fail(
                DeviceTimeout(
                    f"marlin: no ok for {self.ok_timeout_s:.1f} s after {self.max_retries} "
                    f"retries; last line acknowledged N{self.acked_n}"
                )
            )
            return
        log.warning(
            "marlin: no ok for %.1f s, re-sending from N%d (retry %d/%d)",
            self.ok_timeout_s,
            self.accepted_n + 1,
            self._retries,
            self.max_retries,
        )
        self._pending_oks = 0
        self._swallow_oks = 0
        self._ignore_resends = 0
        self._send_ptr = self.accepted_n + 1
        self._last_heard = now
        self._settle()  # nothing left to re-send: what the firmware accepted is answered
        self._pump()

    # --- receiving --------------------------------------------------------------------------
    def on_line(self, line: str) -> None:
        """Account for one line from the firmware (called by the serial reader thread)."""
        text = line.strip()
        if not text:
            return  # Repetier prints an empty line before "Resend:"
        with self.cond:
            if (match := RESEND.match(text)) is not None:
                self._on_resend(int(match.group(1)))
            elif text.startswith("ok") and not self._judge_pending():
                self._on_ok(text)
            elif (skip := SKIP.match(text)) is not None:
                self._on_skip(int(skip.group(1)))
            elif not text.startswith("ok"):
                self._on_other(text)
            self.cond.notify_all()

    def _judge_pending(self) -> bool:
        """An unknown error not followed by a resend request is a fault: fail (True)."""
        if self._pending_error is None:
            return False
        raw, self._pending_error = self._pending_error, None
        self.fail(DeviceError(f"marlin: firmware error: {raw}", raw=raw))
        return True

    def _on_other(self, text: str) -> None:
        if "busy:" in text:
            self.busy_seen += 1
            self._last_heard = time.monotonic()
            return
        if text == "start":
            self.starts_seen += 1
            if self.active:
                self.fail(DeviceError("marlin: the firmware reset during the job", raw=text))
            return
        kind = classify(text)
        if kind == LineKind.FATAL:
            self.fail(DeviceError(f"marlin: firmware error: {text}", raw=text))
        elif kind == LineKind.COMM_ERROR:
            self._last_heard = time.monotonic()  # a resend request follows
        elif kind == LineKind.UNKNOWN_ERROR:
            if self._judge_pending():
                return
            self._pending_error = text
        elif self.captured is not None:
            self.captured.append(text)

    def _on_skip(self, n: int) -> None:
        """Repetier dropped line ``n`` (already had it, or a resend is awaited); an ok follows."""
        self._last_heard = time.monotonic()
        self._swallow_oks += 1
        # with no resend outstanding the skipped line is one the firmware already ran (we
        # re-sent it after a lost ok); while one is, it is a line behind the requested one
        if self.active and self.acked_n >= self._resend_point and n <= self._sent_max:
            self.acked_n = max(self.acked_n, n)
            self._accepted(n)

    def _on_ok(self, text: str) -> None:
        self.oks_seen += 1
        self._last_heard = time.monotonic()
        self._retries = 0
        self._pending_oks = max(0, self._pending_oks - 1)
        n = OK_LINE_NUMBER.match(text)
        if n is None and self._unnumbered_oks > 0:
            # an unnumbered command's ok (or, if the firmware numbers no ok, an earlier line's:
            # then every ack lags one ok behind until the unnumbered one arrives, never ahead)
            self._unnumbered_oks -= 1
        elif self._swallow_oks > 0:
            self._swallow_oks -= 1
        elif self.acked_n < self._sent_max:
            self.acked_n += 1  # oks come in execution order: without N it is the next line's
        if n is not None:
            self.acked_n = max(self.acked_n, min(int(n.group(1)), self._sent_max))
        if (b := _OK_B.search(text)) is not None:
            self.window = max(self.window, min(int(b.group(1)) + 1, self.max_window))
        self._accepted(self.acked_n)
        self._settle()
        if self.acked_n >= self._resend_point:
            self._ignore_resends = 0
        self._pump()

    def _settle(self) -> None:
        """No ok owed: every line the firmware accepted has its answer (lost ones included)."""
        if self._pending_oks == 0 and self._swallow_oks == 0 and self._unnumbered_oks == 0:
            self.acked_n = max(self.acked_n, min(self.accepted_n, self._sent_max))

    def _accepted(self, n: int) -> None:
        """The firmware holds every line <= n; they are never sent again."""
        if n > self.accepted_n:
            self.accepted_n = n
            for done in [k for k in self._history if k <= n]:
                del self._history[done]

    def _on_resend(self, n: int) -> None:
        self._last_heard = time.monotonic()
        if self._pending_error is not None:
            log.warning(
                "marlin: %s, then a resend request: a communication error", self._pending_error
            )
            self._pending_error = None
        behind = max(0, self._pending_oks - 1)  # lines sent after the one this request is for
        if self.resend_with_ok:
            self._swallow_oks += 1
        else:
            self._pending_oks = max(0, self._pending_oks - 1)  # the request stands for the ok
        if not self.active or self.failure is not None:
            return
        if n <= self.accepted_n:
            self.fail(
                DeviceError(
                    f"marlin: firmware asked for line N{n} again, but it had accepted up to "
                    f"N{self.accepted_n}; not re-running lines",
                    raw=f"Resend: {n}",
                )
            )
            return
        self._accepted(min(n - 1, self._sent_max))
        self._settle()
        if n == self._resend_point and self._ignore_resends > 0:
            self._ignore_resends -= 1  # a line sent before our re-send, rejected in turn
            return
        if n > self.next_n:
            n = self.next_n
        log.info("marlin: resend from N%d", n)
        self._ignore_resends = behind
        self._resend_point = n
        self._send_ptr = n
        self._pump()
