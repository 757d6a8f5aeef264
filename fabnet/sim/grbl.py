"""A GRBL 1.1 controller behind a pty: 127-byte RX buffer, realtime bytes, alarms, injectable faults.

It records what a test needs to judge a sender: every line received and executed, settings
writes, receive-buffer overflow. Motion runs in simulated time scaled by ``speed``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

from fabnet.sim.grbl_faults import GrblFaults
from fabnet.sim.grbl_gcode import (
    Action,
    Dwell,
    GcodeFault,
    MachineLimits,
    ModalState,
    Move,
    ProgramEnd,
    SoftLimit,
    SpindleSet,
    Vec3,
    execute_block,
)
from fabnet.sim.grbl_motion import HOLD_DECEL_S, DoorPhase, Motion
from fabnet.sim.grbl_realtime import RX_BUFFER_SIZE, GrblRealtime
from fabnet.sim.grbl_settings import (
    BANNER,
    UNLOCK_MSG,
    default_settings,
)
from fabnet.sim.grbl_system import GrblSystemCommands
from fabnet.sim.pty_link import SerialFirmware

log = logging.getLogger(__name__)

RX_USABLE = RX_BUFFER_SIZE - 1
LINE_BUFFER_SIZE = 80  # a line of more characters is refused with error:11
TICK_S = 0.002  # machine loop period, real seconds
HOMING_LOCK = 0  # internal alarm code: locked at power-up until $H or $X (no ALARM:N printed)


@dataclass
class _Pending:
    text: str
    actions: collections.deque[Action]
    dwell_until: float | None = None


class GrblSimulator(GrblSystemCommands, GrblRealtime, SerialFirmware):
    """GRBL 1.1h on a pty. ``homing=True`` starts locked in alarm with soft limits on and the work
    zero at the machine's lower front left (machine space is [-travel, 0] per axis).

    Public records (read them under no lock; they only grow): ``received_lines``,
    ``executed_lines``, ``setting_writes``, ``alarms_raised``, ``rx_overflow_bytes``,
    ``rx_high_water``, ``resets``.
    """

    def __init__(
        self,
        baud: int = 115200,
        speed: float = 1.0,
        faults: GrblFaults | str | None = None,
        *,
        homing: bool = False,
        soft_limits: bool | None = None,
        paced: bool = True,
        hold_decel_s: float = HOLD_DECEL_S,
        homing_s: float = 0.2,
        travel_mm: Vec3 = (425.0, 425.0, 75.0),
    ) -> None:
        super().__init__(baud, paced=paced)
        self.faults = (
            GrblFaults.parse(faults) if isinstance(faults, str) else faults or GrblFaults()
        )
        soft = homing if soft_limits is None else soft_limits
        if soft and not homing:
            raise ValueError("soft limits need homing enabled (GRBL error:10)")
        self.limits = MachineLimits(travel_mm, (5000.0, 5000.0, 1000.0), soft)
        self.settings = default_settings(homing, soft, travel_mm)
        self.homing_s = homing_s
        self.wco: Vec3 = (-travel_mm[0], -travel_mm[1], -travel_mm[2]) if homing else (0, 0, 0)
        self.received_lines: list[str] = []
        self.executed_lines: list[str] = []
        self.setting_writes: list[str] = []
        self.alarms_raised: list[int] = []
        self.rx_overflow_bytes = 0
        self.rx_high_water = 0
        self.resets = 0
        self._cond = threading.Condition()
        self._motion = Motion(speed, hold_decel_s)
        self._modal = ModalState(wco=self.wco)
        self._rx = bytearray()
        self._line = bytearray()
        self._in_paren = self._in_semicolon = self._line_overflow = False
        self._pending: _Pending | None = None
        self._alarm: int | None = HOMING_LOCK if homing else None
        self._critical = self._silent = self._jogging = self._check_mode = self._sleeping = False
        self._homing_until: float | None = None
        self._door = DoorPhase.NONE
        self._door_close_at = self._restore_until = 0.0
        self._spindle: tuple[int, float] = (5, 0.0)  # (M3/M4/M5, rpm)
        self._spindle_before_door: tuple[int, float] = (5, 0.0)
        self._block_no = 0
        self._reports = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="grbl-sim", daemon=True)

    # ---- what tests and the CLI read -------------------------------------------------------

    @property
    def device_path(self) -> str:
        """The pty the host opens; starts the simulator on first use."""
        return self.start()

    @property
    def state_text(self) -> str:
        with self._cond:
            return self._state_word()

    @property
    def spindle_rpm(self) -> float:
        with self._cond:
            return self._spindle[1] if self._spindle[0] != 5 else 0.0

    @property
    def mpos(self) -> Vec3:
        with self._cond:
            return self._motion.position

    @property
    def wpos(self) -> Vec3:
        with self._cond:
            m = self._motion.position
            return (m[0] - self.wco[0], m[1] - self.wco[1], m[2] - self.wco[2])

    @property
    def planner_blocks(self) -> int:
        with self._cond:
            return len(self._motion.blocks)

    # ---- link callbacks ----------------------------------------------------------------------

    def on_start(self) -> None:
        self._thread.start()
        self._reply(BANNER.strip("\r\n"), leading=True)
        if self._alarm is not None:
            self._reply(UNLOCK_MSG)

    def on_close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def on_bytes(self, data: bytes) -> None:
        """GRBL's serial ISR: realtime bytes act at once, the rest enters the 127-byte buffer."""
        now = time.monotonic()
        with self._cond:
            if self._silent:
                return
            for byte in data:
                if byte == 0x3F:  # ?
                    self._send_status()
                elif byte == 0x21:  # !
                    self._feed_hold(now)
                elif byte == 0x7E:  # ~
                    self._cycle_start(now)
                elif byte == 0x18:
                    self._soft_reset()
                elif byte == 0x84:  # safety door
                    self._open_door(now)
                elif byte == 0x85:  # jog cancel
                    self._cancel_jog()
                elif byte >= 0x80:
                    pass  # overrides: accepted, not simulated
                elif len(self._rx) >= RX_USABLE:
                    self.rx_overflow_bytes += 1  # the byte is lost, as on the real board
                else:
                    self._rx.append(byte)
                    self.rx_high_water = max(self.rx_high_water, len(self._rx))
            self._cond.notify_all()

    # ---- machine loop --------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                try:
                    self._tick(time.monotonic())
                except Exception:  # a simulator bug must show, not hang the test silently
                    log.exception("GRBL simulator loop failed")
                self._cond.wait(TICK_S)

    def _tick(self, now: float) -> None:
        motion = self._motion
        motion.advance(now)
        self._update_door(now)
        if self._homing_until is not None and now >= self._homing_until:
            pull_off = -float(self.settings[27])
            motion.position = (pull_off, pull_off, pull_off)
            self._homing_until, self._alarm = None, None
            self._sync_position()
            self._reply("ok")
        if self._jogging and not motion.cycle_active:
            self._jogging = False
            self._sync_position()
        if not self._silent:
            self._process_lines(now)
        motion.start_cycle(now)

    def _process_lines(self, now: float) -> None:
        while not (self._critical or self._sleeping or self._homing_until or self._silent):
            if self._pending is not None:
                if not self._advance_pending(now):
                    return
                continue
            line = self._next_line()
            if line is None:
                return
            self._handle_line(line, now)

    def _next_line(self) -> str | None:
        """Read characters as GRBL's protocol loop does; a completed line, or None."""
        while self._rx:
            char = chr(self._rx.pop(0))
            if char in "\r\n":
                text = self._line.decode("ascii", errors="replace")
                overflow = self._line_overflow
                self._line.clear()
                self._in_paren = self._in_semicolon = self._line_overflow = False
                return "\x00" if overflow else text
            if self._in_paren:
                self._in_paren = char != ")"
            elif self._in_semicolon or char <= " " or char == "/":
                pass
            elif char == "(":
                self._in_paren = True
            elif char == ";":
                self._in_semicolon = True
            elif len(self._line) >= LINE_BUFFER_SIZE - 1:
                self._line_overflow = True
            else:
                self._line.append(ord(char.upper()))
        return None

    def _handle_line(self, text: str, now: float) -> None:
        if text == "\x00":
            self._reply("error:11")
            return
        if not text:
            self._reply("ok")  # empty lines are acknowledged, for syncing
            return
        self.received_lines.append(text)
        if text.startswith("$"):
            self._system_command(text, now)
            return
        if self._alarm is not None or self._jogging:
            self._reply("error:9")
            return
        self._block_no += 1
        if self._inject_fault(self._block_no):
            return
        try:
            actions = execute_block(text, self._modal, self.limits)
        except GcodeFault as fault:
            self._reply(f"error:{fault.code}")
            return
        except SoftLimit:
            self._raise_alarm(2)
            return
        if self._check_mode:
            self._reply("ok")
            return
        if self.faults.door_at == self._block_no:
            self._open_door(now)
        self._pending = _Pending(text, collections.deque(actions))

    def _inject_fault(self, block: int) -> bool:
        faults = self.faults
        if faults.silent_from is not None and block >= faults.silent_from:
            log.info("GRBL sim: going silent at block %d", block)
            self._silent = True
        elif block in faults.error_at:
            self._reply(f"error:{faults.error_at[block]}")
        elif block in faults.alarm_at:
            self._raise_alarm(faults.alarm_at[block])
        else:
            return False
        return True

    def _advance_pending(self, now: float) -> bool:
        """Feed the pending line's actions to the planner; True once it is acknowledged."""
        pending = self._pending
        assert pending is not None
        motion = self._motion
        while pending.actions:
            action = pending.actions[0]
            if isinstance(action, Move):
                if motion.planner_free == 0:
                    motion.start_cycle(now)  # GRBL starts the cycle when the planner is full
                    return False
                motion.queue(action.target, action.duration_s, action.feed_mm_min)
            else:
                if motion.blocks or motion.cycle_active:
                    return False  # spindle changes, dwells and program end wait for motion
                if isinstance(action, Dwell):
                    if pending.dwell_until is None:
                        pending.dwell_until = now + action.seconds / motion.speed
                    if now < pending.dwell_until:
                        return False
                elif isinstance(action, SpindleSet):
                    self._spindle = (action.direction, action.rpm)
                elif isinstance(action, ProgramEnd):
                    self._spindle = (5, 0.0)
            pending.actions.popleft()
        self.executed_lines.append(pending.text)
        self._pending = None
        self._reply("ok")
        return True

    def _soft_reset(self) -> None:
        """Ctrl-X: stop, flush buffers, spindle off, banner; ALARM:3 if it cut motion short."""
        self.resets += 1
        homing = self._homing_until is not None
        interrupted = self._motion.stop_all()
        self._rx.clear()
        self._line.clear()
        self._in_paren = self._in_semicolon = self._line_overflow = False
        self._pending, self._homing_until = None, None
        self._spindle, self._door = (5, 0.0), DoorPhase.NONE
        self._jogging = self._check_mode = self._sleeping = self._critical = False
        self._modal = ModalState(
            wco=self.wco, position=self._motion.position, home_position=self._modal.home_position
        )
        if homing or interrupted:
            code = 6 if homing else 3
            self._alarm = code
            self.alarms_raised.append(code)
            self._reply(f"ALARM:{code}")
        self._reply(BANNER.strip("\r\n"), leading=True)
        if self._alarm is not None:
            self._reply(UNLOCK_MSG)

    def _reply(self, text: str, leading: bool = False) -> None:
        self.send_bytes((("\r\n" if leading else "") + text + "\r\n").encode("ascii"))
