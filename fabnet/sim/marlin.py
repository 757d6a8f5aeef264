"""A Marlin-like firmware on a pty: line numbers and checksums, resends, ADVANCED_OK, a 4-line
command buffer and a 16-move planner that fill up, heaters, busy keepalive and injected faults.

``executed`` lists every command the firmware ran, in order, as the protocol-level text
(without ``N`` and checksum), so tests can check a stream arrived exactly once.

With ``state_file`` the simulator keeps a JSON object there (``fabnet.sim.marlin_state``):

- ``hotend_c``, ``hotend_target_c``, ``bed_c``, ``bed_target_c``: °C, actual and target
  (target 0 = heater off; actual falls toward ambient, 21 °C, once off)
- ``fan``: part-cooling fan, 0..255; ``steppers_on``: motors energised
- ``lines_executed``: commands run since the simulator started (``len(executed)``)
- ``files_completed``: print files run to their end. The sim cannot see a file's end in the
  stream itself (a cancel's safe-stop lines look like a profile's end G-code), so it counts
  the host's word for it: fabnet's Marlin driver sends ``M400`` (finish all moves) after the
  last line of a file, to learn the machine has physically finished, and never when it
  cancels. Every ``M400`` that completes counts, so a file with ``M400`` lines of its own
  counts those too (fabnet's slicers and profiles emit none).
- ``busy``: commands are buffered or moves planned (False once a stream has stopped)
- ``halted``: the firmware halted (M112, a fault) and ignores the host
- ``updated_at``: Unix time of this snapshot, s
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any

from fabnet.sim.marlin_commands import EMERGENCY, Command, MarlinCommands
from fabnet.sim.marlin_dialects import (
    Dialect,
    LineReceiver,
    get_dialect,
    split_line,
)
from fabnet.sim.marlin_dialects import checksum as checksum  # the scenario tests frame with it
from fabnet.sim.marlin_faults import FaultPlan
from fabnet.sim.marlin_machine import Machine
from fabnet.sim.marlin_state import StateFile
from fabnet.sim.pty_link import SerialFirmware

log = logging.getLogger(__name__)

BANNER = get_dialect("marlin").banner


class MarlinSimulator(MarlinCommands, SerialFirmware):
    """Marlin on a pty. ``speed`` scales motion and heating; ``ack_latency_s`` is the time the
    firmware spends parsing and acknowledging one command (real boards: ~1-2 ms).

    dialect: whose words it speaks (``fabnet.sim.marlin_dialects``); advanced_ok None: as the
    dialect's M115 says. busy_at_start_s: the board is mid-way through a long command of a
    previous host when this one connects (it says ``busy: processing`` until done).
    """

    def __init__(
        self,
        baud: int = 115200,
        speed: float = 1.0,
        faults: FaultPlan | None = None,
        *,
        paced: bool = True,
        bufsize: int = 4,
        planner_size: int = 16,
        advanced_ok: bool | None = None,
        ack_latency_s: float = 0.0015,
        busy_interval_s: float = 2.0,
        state_file: Path | None = None,
        dialect: str | Dialect = "marlin",
        busy_at_start_s: float = 0.0,
    ) -> None:
        super().__init__(baud, paced=paced)
        self.faults = faults or FaultPlan()
        self.bufsize = bufsize
        self.dialect = get_dialect(dialect) if isinstance(dialect, str) else dialect
        caps = self.dialect.capabilities
        self.advanced_ok = "ADVANCED_OK" in caps if advanced_ok is None else advanced_ok
        self.busy_at_start_s = busy_at_start_s
        self.ack_latency_s = ack_latency_s
        self.busy_interval_s = busy_interval_s
        self.machine = Machine(speed, planner_size)
        self.executed: list[str] = []
        self.resets = 0
        self.files_completed = 0
        self._state_file = StateFile(state_file, self.state) if state_file else None
        self._cond = threading.Condition()
        self._rx: collections.deque[str] = collections.deque()
        self._queue: collections.deque[Command] = collections.deque()
        self._receiver = LineReceiver(self.dialect, self.send_line, self._rx.clear)
        self._fired: set[tuple[str, int]] = set()
        self._halted = False
        self._silent = False
        self._stop = False
        self._autoreport_s = 0.0
        self._next_report = 0.0
        self._last_busy = 0.0
        self._thread = threading.Thread(target=self._run, name="marlin-sim", daemon=True)

    # --- SerialFirmware hooks -------------------------------------------------------------
    def on_start(self) -> None:
        for line in self.dialect.banner:
            self.send_line(line)
        if self.busy_at_start_s > 0:
            with self._cond:
                self._receiver.last_n = 1234  # a previous host's numbering
                deadline = time.monotonic() + self.busy_at_start_s
                busy = Command("G4", None, started=True)  # not in ``executed``: not a host line
                busy.wait = lambda t: t >= deadline
                busy.ok_text = ""
                self._queue.append(busy)
        if self._state_file is not None:
            self._state_file.start()
        self._thread.start()

    def on_close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self._state_file is not None:
            self._state_file.close()

    def on_line(self, line: str) -> None:
        with self._cond:
            if not (self._halted or self._silent):
                text = line.strip()
                if text in EMERGENCY and "EMERGENCY_PARSER" in self.dialect.capabilities:
                    self._emergency(text)
                self._rx.append(text)
                self._cond.notify()

    def _emergency(self, code: str) -> None:
        """The emergency parser: M108 ends a heater wait, M410 drops the planned moves."""
        head = self._queue[0] if self._queue else None
        if code == "M108" and head is not None and head.text.startswith(("M109", "M190")):
            head.wait = None
        elif code == "M410":
            self.machine.quick_stop()

    # --- state the tests read -------------------------------------------------------------
    @property
    def halted(self) -> bool:
        return self._halted

    def snapshot(self) -> dict[str, float]:
        """Targets (°C), fan (0..255) and position (mm), read under the firmware's lock."""
        with self._cond:
            return self.machine.snapshot()

    def state(self) -> dict[str, Any]:
        """The state-file object (fields in the module docstring), read under the lock."""
        with self._cond:
            m = self.machine
            return {
                "hotend_c": round(m.hotend.actual_c, 2),
                "hotend_target_c": m.hotend.target_c,
                "bed_c": round(m.bed.actual_c, 2),
                "bed_target_c": m.bed.target_c,
                "fan": m.fan,
                "steppers_on": m.steppers_on,
                "lines_executed": len(self.executed),
                "files_completed": self.files_completed,
                "busy": bool(self._queue or self._rx) or not m.planner_empty(),
                "halted": self._halted,
                "updated_at": time.time(),
            }

    def _changed(self) -> None:
        """A watcher waits for this change (heater target, end of a file): write it now."""
        if self._state_file is not None:
            self._state_file.poke()

    # --- the firmware loop ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stop:
                        return
                    reply = self._step(time.monotonic())
                if reply is None:
                    continue
                if self.ack_latency_s > 0:
                    time.sleep(self.ack_latency_s)
                for line in reply:
                    self.send_line(line)
        except Exception:
            log.exception("marlin simulator loop failed")

    def _step(self, now: float) -> list[str] | None:
        """One pass of the main loop; returns the reply of a finished command, if any."""
        self.machine.tick(now)
        if self._halted or self._silent:
            self._cond.wait(0.1)
            return None
        self._auto_report(now)
        while self._rx and len(self._queue) < self.bufsize:
            self._receive(self._rx.popleft(), now)
        if not self._queue:
            self._cond.wait(0.05)
            return None
        head = self._queue[0]
        if not head.started:
            self._begin(head, now)
            if self._halted:
                return None
        if not head.started or (head.wait is not None and not head.wait(now)):
            self._keepalive(now)
            nxt = self.machine.next_event()
            self._cond.wait(min(0.01, max(0.0005, nxt - now)) if nxt else 0.01)
            return None
        self._last_busy = now
        return self._finish(head)

    def _finish(self, head: Command) -> list[str]:
        reply = list(head.reply)
        ok = head.ok_text
        if ok == "":
            self._queue.popleft()
            return reply  # the firmware's own work: no host line to acknowledge
        if ok is None:
            ok = "ok"
            if self.advanced_ok:
                n = f" N{head.n}" if head.n is not None else ""
                free = self.bufsize - len(self._queue)
                ok = f"ok{n} P{self.machine.planner_free()} B{free}"
        self._queue.popleft()
        if head.n is not None and self._fire("drop-ok", head.n, head.n in self.faults.drop_ok):
            log.info("marlin sim: dropping the ok of line %d", head.n)
        else:
            reply.append(ok)
        return reply

    def _fire(self, kind: str, n: int, armed: bool) -> bool:
        """True the first time fault ``kind`` hits line ``n`` (each fault fires once)."""
        if not armed or (kind, n) in self._fired:
            return False
        self._fired.add((kind, n))
        return True

    def _keepalive(self, now: float) -> None:
        if now - self._last_busy >= self.busy_interval_s:
            self._last_busy = now
            self.send_line("echo:busy: processing")

    def _auto_report(self, now: float) -> None:
        if self._autoreport_s > 0 and now >= self._next_report:
            self._next_report = now + self._autoreport_s
            self.send_line(" " + self.machine.temps_text())

    # --- receiving: line numbers and checksums --------------------------------------------
    def _receive(self, line: str, now: float) -> None:
        if not line:
            return
        n, cmd, sent_cs = split_line(line)
        if n is None:
            if sent_cs is not None or line.startswith("N"):  # N garbled, or missing
                kind = "line_number" if line.startswith("N") else "no_line_number"
                self._receiver.reject(kind, self._receiver.last_n + 1)
            else:
                self._queue.append(Command(line, None))
            return
        star = sent_cs is not None
        if self._on_receipt_faults(n):
            return
        if self._fire("nochecksum", n, n in self.faults.no_checksum):
            star = False
        if self._fire("noline", n, n in self.faults.no_line_number):
            self._receiver.reject("no_line_number", n)
            return
        corrupt = self._fire("corrupt", n, n in self.faults.corrupt)
        if self._receiver.check(n, cmd, sent_cs if star else None, corrupt):
            self._queue.append(Command(cmd, n))

    def _on_receipt_faults(self, n: int) -> bool:
        """Faults that hit line ``n`` as it arrives; True if the line goes no further."""
        if self._fire("reset", n, n == self.faults.reset_at):
            self._reset()
            return True
        if self._fire("silent", n, n == self.faults.silent_at):
            log.info("marlin sim: going silent at line %d", n)
            self._silent = True
            return True
        if self._fire("lose", n, n in self.faults.lose):
            log.info("marlin sim: line %d lost on the wire", n)
            return True
        return False

    def _reset(self) -> None:
        log.info("marlin sim: board reset")
        self.resets += 1
        self.link.discard_tx()
        self._rx.clear()
        self._queue.clear()
        self._receiver.last_n = 0
        self._autoreport_s = 0.0
        speed, size = self.machine.speed, self.machine.planner_size
        self.machine = Machine(speed, size)
        for line in self.dialect.banner:
            self.send_line(line)

    def _halt(self, lines: list[str]) -> None:
        self._halted = True
        self.machine.hotend.target_c = 0.0
        self.machine.bed.target_c = 0.0
        self._changed()
        self._queue.clear()
        self._rx.clear()
        for line in lines:
            self.send_line(line)
