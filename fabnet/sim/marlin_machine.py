"""The simulated printer behind the Marlin simulator: heaters, fan, position and the planner.

Pure state, no I/O and no threads: the firmware loop calls it under its own lock, with the
time passed in (``now``, monotonic seconds). ``speed`` scales motion and heating time.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass

AMBIENT_C = 21.0
HOTEND_RATE_C_S = 2.5  # heating rate at speed 1
BED_RATE_C_S = 1.0
# Cooling is Newtonian: the distance to the goal shrinks by e every tau (at speed 1). A hotend
# with its fan loses ~190 °C in a minute; a bed takes a few minutes. At least ``rate_c_s``.
HOTEND_COOL_TAU_S = 20.0
BED_COOL_TAU_S = 60.0
SETTLED_C = 0.5  # cooling within this of the goal counts as there
TEMP_WINDOW_C = 1.0  # M109/M190 consider the target reached within this
HOMING_S = 3.0
AXES = ("X", "Y", "Z", "E")
TEMP_REPORT_S = 1.0  # M109/M190 print temperatures this often while waiting
Wait = Callable[[float], bool]  # a command's wait: True once it may finish (monotonic s in)


@dataclass
class Heater:
    """One heater: actual and target temperature in °C. It heats linearly at ``rate_c_s``
    and cools exponentially (time constant ``cool_tau_s``) toward its target or ambient."""

    rate_c_s: float
    cool_tau_s: float
    actual_c: float = AMBIENT_C
    target_c: float = 0.0
    broken: bool = False  # a failed heater: cools toward ambient whatever its target

    def update(self, dt_s: float) -> None:
        goal = AMBIENT_C if self.broken else max(self.target_c, AMBIENT_C)
        gap = goal - self.actual_c
        if gap > 0:
            step = self.rate_c_s * dt_s
        else:
            step = max(self.rate_c_s * dt_s, -gap * (1.0 - math.exp(-dt_s / self.cool_tau_s)))
            if -gap - step <= SETTLED_C:
                step = -gap
        if abs(gap) <= step:
            self.actual_c = goal
        else:
            self.actual_c += math.copysign(step, gap)

    def reached(self) -> bool:
        return abs(self.actual_c - max(self.target_c, AMBIENT_C)) <= TEMP_WINDOW_C


def parse_words(cmd: str) -> tuple[str, dict[str, float]]:
    """Split ``G1 X10 F3000`` into ("G1", {"X": 10.0, "F": 3000.0}); bad words are ignored."""
    words = cmd.split()
    if not words:
        return "", {}
    code = words[0].upper()
    params: dict[str, float] = {}
    for word in words[1:]:
        letter, value = word[:1].upper(), word[1:]
        try:
            params[letter] = float(value) if value else 0.0
        except ValueError:
            continue
    return code, params


class Machine:
    """Heaters, fan, position (mm) and a planner of ``planner_size`` timed moves."""

    def __init__(self, speed: float = 1.0, planner_size: int = 16) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self.planner_size = planner_size
        self.hotend = Heater(HOTEND_RATE_C_S, HOTEND_COOL_TAU_S)
        self.bed = Heater(BED_RATE_C_S, BED_COOL_TAU_S)
        self.fan = 0  # 0..255
        self.steppers_on = False
        self.position = dict.fromkeys(AXES, 0.0)
        self.relative = False
        self.e_relative = False
        self.feed_mm_min = 1500.0
        self._moves: collections.deque[float] = collections.deque()  # end times
        self._last_tick: float | None = None

    def tick(self, now: float) -> None:
        """Advance heaters and retire finished moves up to ``now``."""
        if self._last_tick is not None:
            dt = (now - self._last_tick) * self.speed
            self.hotend.update(dt)
            self.bed.update(dt)
        self._last_tick = now
        while self._moves and self._moves[0] <= now:
            self._moves.popleft()

    def planner_free(self) -> int:
        return self.planner_size - len(self._moves)

    def planner_empty(self) -> bool:
        return not self._moves

    def next_event(self) -> float | None:
        return self._moves[0] if self._moves else None

    def _enqueue(self, duration_s: float, now: float) -> None:
        start = self._moves[-1] if self._moves else now
        self._moves.append(max(start, now) + duration_s / self.speed)

    def move(self, params: dict[str, float], now: float) -> bool:
        """Plan a G0/G1; False (nothing changed) when the planner is full."""
        if self.planner_free() <= 0:
            return False
        if "F" in params and params["F"] > 0:
            self.feed_mm_min = params["F"]
        deltas = {}
        for axis in AXES:
            if axis in params:
                rel = self.e_relative if axis == "E" else self.relative
                target = self.position[axis] + params[axis] if rel else params[axis]
                deltas[axis] = target - self.position[axis]
                self.position[axis] = target
        xyz = math.sqrt(sum(deltas.get(a, 0.0) ** 2 for a in "XYZ"))
        distance = xyz if xyz > 0 else abs(deltas.get("E", 0.0))
        self.steppers_on = True
        self._enqueue(distance / (self.feed_mm_min / 60.0), now)
        return True

    def apply(self, code: str, params: dict[str, float]) -> bool:
        """Modes, position, fan and steppers (G90/G91 M82/M83 G92 M106/M107 M84/M18); False
        if ``code`` is none of them."""
        if code in ("G90", "G91"):
            self.relative = code == "G91"
            self.e_relative = self.relative
        elif code in ("M82", "M83"):
            self.e_relative = code == "M83"
        elif code == "G92":
            self.set_position(params)
        elif code == "M106":
            self.fan = int(max(0.0, min(255.0, params.get("S", 255.0))))
        elif code == "M107":
            self.fan = 0
        elif code in ("M84", "M18"):
            self.steppers_on = False
        else:
            return False
        return True

    def quick_stop(self) -> None:
        """M410: drop every planned move (the position stays where the plan put it)."""
        self._moves.clear()

    def home(self, params: dict[str, float], now: float) -> bool:
        """G28: home the named axes (all when none named); False when the planner is full."""
        if self.planner_free() <= 0:
            return False
        axes = [a for a in "XYZ" if a in params] or ["X", "Y", "Z"]
        for axis in axes:
            self.position[axis] = 0.0
        self.steppers_on = True
        self._enqueue(HOMING_S, now)
        return True

    def set_position(self, params: dict[str, float]) -> None:
        """G92: the current position becomes the given coordinates (all zero if none)."""
        for axis in AXES:
            if axis in params or not params:
                self.position[axis] = params.get(axis, 0.0)

    def snapshot(self) -> dict[str, float]:
        """Targets (°C), fan (0..255), steppers (0/1) and position (mm, lower-case axes)."""
        return {
            "hotend_target_c": self.hotend.target_c,
            "bed_target_c": self.bed.target_c,
            "fan": float(self.fan),
            "steppers_on": float(self.steppers_on),
            **{axis.lower(): value for axis, value in self.position.items()},
        }

    def temps_text(self) -> str:
        """Temperatures as Marlin prints them: ``T:21.00 /0.00 B:21.00 /0.00 @:0 B@:0``."""
        h, b = self.hotend, self.bed
        return f"T:{h.actual_c:.2f} /{h.target_c:.2f} B:{b.actual_c:.2f} /{b.target_c:.2f} @:0 B@:0"

    def position_text(self) -> str:
        """Position as M114 prints it."""
        p = self.position
        return (
            f"X:{p['X']:.2f} Y:{p['Y']:.2f} Z:{p['Z']:.2f} E:{p['E']:.2f} "
            f"Count X:{round(p['X'] * 80)} Y:{round(p['Y'] * 80)} Z:{round(p['Z'] * 400)}"
        )


def heater_wait(
    machine: Machine, reached: Callable[[], bool], now: float, report: Callable[[str], None]
) -> Wait:
    """M109/M190: finish once the heater is within the window; ``report`` temps meanwhile."""
    state = {"next": now + TEMP_REPORT_S}

    def wait(t: float) -> bool:
        if reached():
            return True
        if t >= state["next"]:
            state["next"] = t + TEMP_REPORT_S
            report(" " + machine.temps_text() + " W:?")
        return False

    return wait


def dwell_wait(machine: Machine, dwell_s: float) -> Wait:
    """G4: wait for the planner to empty, then dwell ``dwell_s`` seconds (scaled)."""
    state: dict[str, float] = {}

    def wait(t: float) -> bool:
        if not machine.planner_empty():
            return False
        end = state.setdefault("end", t + dwell_s)
        return t >= end

    return wait
