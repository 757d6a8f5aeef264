"""What the simulated Marlin does with a command once it is first in the buffer: moves and
homing through the planner, heaters and their waits, reports, dwell, M400, halts and the faults
injected at a line. A mixin of ``MarlinSimulator`` (as ``grbl_system`` is of the GRBL one),
apart from it because receiving lines and running them are two jobs; it reads and changes the
simulator's state under its lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fabnet.sim.marlin_dialects import FAULT_LINES, HALT_LINE, Dialect, LineReceiver
from fabnet.sim.marlin_faults import FaultPlan
from fabnet.sim.marlin_machine import Machine, Wait, dwell_wait, heater_wait, parse_words

IGNORED = frozenset(
    "G21 G29 G80 M17 M73 M117 M82 M83 M201 M203 M204 M205 M220 M221 M900 M907 T0".split()
)
EMERGENCY = frozenset(("M108", "M410"))  # acted on as they arrive when the dialect has the parser


@dataclass
class Command:
    """A line in the firmware's command buffer: ``started`` once its effect ran, done when
    ``wait`` (if any) says so; then ``reply`` and the ok go back to the host."""

    text: str
    n: int | None
    started: bool = False
    wait: Wait | None = None
    reply: tuple[str, ...] = ()  # lines before the ok
    ok_text: str | None = None  # replaces the plain ok (M105)


class MarlinCommands:
    """``_begin`` and ``_execute`` of the firmware loop; state lives in ``MarlinSimulator``."""

    machine: Machine
    executed: list[str]
    faults: FaultPlan
    dialect: Dialect
    busy_interval_s: float
    files_completed: int
    send_line: Callable[[str], None]  # SerialFirmware's: annotated only, so it is not shadowed
    _receiver: LineReceiver
    _autoreport_s: float
    _next_report: float
    _last_busy: float

    def _fire(self, kind: str, n: int, armed: bool) -> bool:
        raise NotImplementedError

    def _halt(self, lines: list[str]) -> None:
        raise NotImplementedError

    def _changed(self) -> None:
        raise NotImplementedError

    def _begin(self, head: Command, now: float) -> None:
        """Run the command's effect once; leaves ``started`` False while the planner is full."""
        code, params = parse_words(head.text)
        m = self.machine
        if code in ("G0", "G1"):
            if not m.move(params, now):
                return
        elif code == "G28":
            if not m.home(params, now):
                return
        head.started = True
        self.executed.append(head.text)
        n = head.n
        if n is not None and self._fire("heateroff", n, n == self.faults.heater_off_at):
            self.machine.hotend.broken = True
        if n is not None and self._fire("halt", n, n == self.faults.halt_at):
            self._halt([HALT_LINE])
            return
        for kind, line in FAULT_LINES.items():
            if n is not None and self._fire(kind, n, self.faults.thermal.get(n) == kind):
                self._halt([line, HALT_LINE])
                return
        if n is not None and self._fire("busy", n, n in self.faults.busy_s):
            deadline = now + self.faults.busy_s[n]
            self._last_busy = now
            head.wait = lambda t: t >= deadline
            return
        if code not in ("G0", "G1", "G28"):
            self._execute(head, code, params, now)

    def _execute(self, head: Command, code: str, params: dict[str, float], now: float) -> None:
        m = self.machine
        if m.apply(code, params):
            pass  # modes, position, fan, steppers: the machine's own state
        elif code in ("M104", "M109"):
            m.hotend.target_c = params.get("S", params.get("R", m.hotend.target_c))
            self._changed()
            if code == "M109":
                head.wait = heater_wait(m, m.hotend.reached, now, self.send_line)
        elif code in ("M140", "M190"):
            m.bed.target_c = params.get("S", params.get("R", m.bed.target_c))
            self._changed()
            if code == "M190":
                head.wait = heater_wait(m, m.bed.reached, now, self.send_line)
        elif code == "M105":
            head.ok_text = "ok " + m.temps_text()
        elif code == "M114":
            head.reply = (m.position_text(),)
        elif code == "M155" and "AUTOREPORT_TEMP" in self.dialect.capabilities:
            self._autoreport_s = params.get("S", 0.0)
            self._next_report = now + self._autoreport_s
        elif code == "M115":
            head.reply = tuple(self.dialect.m115())
        elif code in EMERGENCY:
            pass  # acted on as it arrived (emergency parser), or a no-op
        elif code == "M113":
            self.busy_interval_s = params.get("S", 2.0)
        elif code == "M110":
            self._receiver.last_n = int(params.get("N", 0.0))
        elif code == "M400":
            head.wait = self._finish_moves_wait
        elif code == "G4":
            dwell_s = params.get("S", params.get("P", 0.0) / 1000.0) / m.speed
            head.wait = dwell_wait(m, dwell_s)
        elif code == "M112":
            self._halt([HALT_LINE])
        elif code not in IGNORED:
            head.reply = (f'echo:Unknown command: "{head.text}"',)

    def _finish_moves_wait(self, now: float) -> bool:
        """M400: done once the planner is empty; the host's end-of-file mark (module doc)."""
        if not self.machine.planner_empty():
            return False
        self.files_completed += 1
        self._changed()
        return True
