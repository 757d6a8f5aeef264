"""The ``$`` system commands of the simulated GRBL, as GRBL's ``system_execute_line`` answers them.

A mixin of ``GrblSimulator``: it reads and changes the simulator's state under its lock.
"""

from __future__ import annotations

from fabnet.sim.grbl_gcode import (
    GcodeFault,
    MachineLimits,
    ModalState,
    Move,
    SoftLimit,
    execute_block,
    parse_words,
)
from fabnet.sim.grbl_motion import DoorPhase, HoldPhase, Motion
from fabnet.sim.grbl_settings import (
    BUILD_INFO,
    HELP_MSG,
    parameters_report,
    settings_report,
)


class GrblSystemCommands:
    """``$$ $# $G $I $N $C $X $H $J= $SLP $n=value``; state lives in ``GrblSimulator``."""

    settings: dict[int, float]
    setting_writes: list[str]
    limits: MachineLimits
    homing_s: float
    _modal: ModalState
    _motion: Motion
    _alarm: int | None
    _jogging: bool
    _check_mode: bool
    _sleeping: bool
    _door: DoorPhase
    _homing_until: float | None
    _spindle: tuple[int, float]

    def _reply(self, text: str, leading: bool = False) -> None:
        raise NotImplementedError

    def _soft_reset(self) -> None:
        raise NotImplementedError

    def _idle_or_alarm(self) -> bool:
        m = self._motion
        busy = m.cycle_active or m.blocks or m.hold is not HoldPhase.NONE or self._jogging
        return self._alarm is not None or not (busy or self._door is not DoorPhase.NONE)

    def _system_command(self, text: str, now: float) -> None:
        lines = self._system_lines(text, now)
        for line in lines:
            self._reply(line)

    def _system_lines(self, text: str, now: float) -> list[str]:
        """Answer a ``$`` line as GRBL's ``system_execute_line`` does (ok/error:N last)."""
        simple = {
            "$": lambda: [HELP_MSG],
            "$G": lambda: [self._modal.gc_report()],
        }
        if text in simple:
            return [*simple[text](), "ok"]
        if text == "$X":
            if self._alarm is None:
                return ["ok"]
            self._alarm = None
            return ["[MSG:Caution: Unlocked]", "ok"]
        if text == "$$":
            busy = self._motion.cycle_active or self._motion.hold is not HoldPhase.NONE
            return ["error:8"] if busy else [*settings_report(self.settings), "ok"]
        if text.startswith("$J="):
            return self._jog(text[3:])
        if not self._idle_or_alarm():
            return ["error:8"]
        if text == "$C":
            return self._toggle_check_mode()
        if text == "$H":
            if not self.settings[22]:
                return ["error:5"]
            self._homing_until = now + self.homing_s
            return []  # ok follows when the cycle ends
        if text == "$#":
            return [*parameters_report(self._modal), "ok"]
        if text == "$I":
            return [*BUILD_INFO, "ok"]
        if text == "$N":
            return ["$N0=", "$N1=", "ok"]
        if text == "$SLP":
            self._sleeping, self._spindle = True, (5, 0.0)
            return ["ok", "[MSG:Sleeping]"]
        if text.startswith(("$I=", "$N0=", "$N1=", "$RST=")):
            self.setting_writes.append(text)
            return ["ok"]
        return self._write_setting(text)

    def _write_setting(self, text: str) -> list[str]:
        number, equals, value = text[1:].partition("=")
        if not equals or not number.isdigit() or int(number) not in self.settings:
            return ["error:3"]
        try:
            parsed = float(value)
        except ValueError:
            return ["error:2"]
        if int(number) == 20 and parsed and not self.settings[22]:
            return ["error:10"]
        self.setting_writes.append(text)
        self.settings[int(number)] = parsed
        return ["ok"]

    def _toggle_check_mode(self) -> list[str]:
        if self._alarm is not None:
            return ["error:8"]
        if not self._check_mode:
            self._check_mode = True
            return ["[MSG:Enabled]", "ok"]
        for line in ("[MSG:Disabled]", "ok"):
            self._reply(line)
        self._soft_reset()  # leaving check mode resets GRBL
        return []

    def _jog(self, body: str) -> list[str]:
        if self._alarm is not None or not (self._jogging or self._idle_or_alarm()):
            return ["error:8"]
        try:
            words = parse_words(body)
        except GcodeFault as fault:
            return [f"error:{fault.code}"]
        letters = {letter for letter, _ in words}
        motion_words = {v for letter, v in words if letter == "G" and v in (0, 2, 3, 4, 80)}
        if "F" not in letters or "M" in letters or motion_words:
            return ["error:16"]
        trial = ModalState(**vars(self._modal))
        trial.motion = 1
        try:
            actions = execute_block(body, trial, self.limits)
        except GcodeFault as fault:
            return [f"error:{fault.code}"]
        except SoftLimit:
            return ["error:15"]  # a jog beyond travel is refused, not an alarm
        moves = [a for a in actions if isinstance(a, Move)]
        if len(moves) > self._motion.planner_free:
            return ["error:8"]
        for move in moves:
            self._motion.queue(move.target, move.duration_s, move.feed_mm_min)
        self._jogging = bool(moves)
        return ["ok"]
