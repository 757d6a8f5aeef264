"""The simulated GRBL's realtime side: the status report (``?``), feed hold and cycle start
(``!`` ``~``), the safety door's phases, jog cancel and alarms. A mixin of ``GrblSimulator``
(as ``grbl_system`` is), apart from it because these act on the machine's state at once,
outside the line protocol; it reads and changes the simulator's state under its lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fabnet.sim.grbl_faults import GrblFaults
from fabnet.sim.grbl_gcode import ModalState, Vec3
from fabnet.sim.grbl_motion import DoorPhase, HoldPhase, Motion
from fabnet.sim.grbl_settings import RESET_MSG, status_report, wco_field

if TYPE_CHECKING:
    from fabnet.sim.grbl import _Pending

RX_BUFFER_SIZE = 128  # GRBL's ring buffer; one slot stays free, so 127 bytes fit
RESTORE_S = 0.05  # Door:3 (spindle spin-up after the door closed), real seconds


class GrblRealtime:
    """Status, hold, resume, door, jog cancel and alarms; state lives in ``GrblSimulator``."""

    faults: GrblFaults
    wco: Vec3
    alarms_raised: list[int]
    _motion: Motion
    _modal: ModalState
    _rx: bytearray
    _pending: _Pending | None
    _alarm: int | None
    _critical: bool
    _jogging: bool
    _check_mode: bool
    _sleeping: bool
    _homing_until: float | None
    _door: DoorPhase
    _door_close_at: float
    _restore_until: float
    _spindle: tuple[int, float]
    _spindle_before_door: tuple[int, float]
    _reports: int

    def _reply(self, text: str, leading: bool = False) -> None:
        raise NotImplementedError

    def _state_word(self) -> str:
        hold = self._motion.hold
        if self._alarm is not None:
            return "Alarm"
        if self._sleeping:
            return "Sleep"
        if self._homing_until is not None:
            return "Home"
        if self._door is not DoorPhase.NONE:
            return f"Door:{self._door.value}"
        if hold is not HoldPhase.NONE:
            return "Hold:1" if hold is HoldPhase.DECELERATING else "Hold:0"
        if self._motion.moving:
            return "Jog" if self._jogging else "Run"
        return "Check" if self._check_mode else "Idle"

    def _send_status(self) -> None:
        self._reports += 1
        extras: list[str] = []
        if self._door in (DoorPhase.AJAR, DoorPhase.STOPPING):
            extras.append("Pn:D")
        if self._reports % 10 == 1:
            extras.append(wco_field(self.wco))
        elif self._reports % 10 == 2:
            extras.append("Ov:100,100,100")
        self._reply(
            status_report(
                self._state_word(),
                self._motion.position,
                self._motion.planner_free,
                RX_BUFFER_SIZE - len(self._rx),
                self._motion.current_feed(),
                self._spindle[1] if self._spindle[0] != 5 else 0.0,
                extras,
            )
        )

    def _feed_hold(self, now: float) -> None:
        if self._alarm is None and not (self._check_mode or self._sleeping or self._homing_until):
            if self._door is DoorPhase.NONE:
                self._motion.feed_hold(now)

    def _cycle_start(self, now: float) -> None:
        if self._door is DoorPhase.CLOSED:
            self._door = DoorPhase.RESTORING
            self._restore_until = now + RESTORE_S
        elif self._door is DoorPhase.NONE:
            self._motion.resume(now)

    def _open_door(self, now: float) -> None:
        if self._door is DoorPhase.NONE and self._alarm is None:
            self._motion.feed_hold(now)
            self._spindle_before_door, self._spindle = self._spindle, (5, 0.0)
            self._door = DoorPhase.STOPPING
            self._door_close_at = now + self.faults.door_open_s

    def _update_door(self, now: float) -> None:
        door = self._door
        if door is DoorPhase.STOPPING and self._motion.hold is HoldPhase.COMPLETE:
            self._door = door = DoorPhase.AJAR
        if door is DoorPhase.AJAR and now >= self._door_close_at:
            self._door = DoorPhase.CLOSED
        if door is DoorPhase.RESTORING and now >= self._restore_until:
            self._spindle = self._spindle_before_door
            self._door = DoorPhase.NONE
            self._motion.resume(now)

    def _cancel_jog(self) -> None:
        if self._jogging:
            self._motion.stop_all()
            self._jogging = False
            self._sync_position()

    def _sync_position(self) -> None:
        self._modal.position = self._motion.position

    def _raise_alarm(self, code: int) -> None:
        self._motion.stop_all()
        self._pending, self._homing_until = None, None
        self._spindle, self._door, self._jogging = (5, 0.0), DoorPhase.NONE, False
        self._sync_position()
        self._alarm = code
        self.alarms_raised.append(code)
        self._reply(f"ALARM:{code}")
        if code in (1, 2):  # critical: everything but status and reset is ignored
            self._critical = True
            self._reply(RESET_MSG)
