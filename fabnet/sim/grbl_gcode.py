"""The G-code interpreter of the simulated GRBL: one normalised block in, actions or error:N out.

Covers what a 3-axis CNC job uses (G0-G3, G4, G17-G21, G28, G53, G54, G80, G90/G91, G94, M0-M5,
M8, M9, M30, F, S, T, N). G10, G92, G93, G38.x and G43.1 answer error:20 ("not simulated").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

Vec3 = tuple[float, float, float]
MM_PER_INCH = 25.4
AXES = "XYZ"

# modal groups of the G words the simulator knows; anything else is error:20
_G_GROUPS: dict[float, str] = {
    0: "motion", 1: "motion", 2: "motion", 3: "motion", 80: "motion",
    17: "plane", 18: "plane", 19: "plane",
    90: "distance", 91: "distance", 91.1: "arc_distance",
    94: "feed_mode", 20: "units", 21: "units", 40: "cutter", 49: "tlo",
    54: "wcs", 55: "wcs", 56: "wcs", 57: "wcs", 58: "wcs", 59: "wcs",
    4: "non_modal", 28: "non_modal", 30: "non_modal", 53: "non_modal",
}  # fmt: skip
_M_GROUPS: dict[int, str] = {
    0: "stopping", 1: "stopping", 2: "stopping", 30: "stopping",
    3: "spindle", 4: "spindle", 5: "spindle", 8: "coolant", 9: "coolant",
}  # fmt: skip
_VALUE_LETTERS = frozenset("FIJKLNPRSTXYZ")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
_PLANES = {17: (0, 1, 2), 18: (2, 0, 1), 19: (1, 2, 0)}  # (axis 0, axis 1, linear axis)


class GcodeFault(Exception):
    """The block is refused with ``error:<code>``."""

    def __init__(self, code: int) -> None:
        super().__init__(f"error:{code}")
        self.code = code


class SoftLimit(Exception):
    """A motion target lies outside the machine's travel (GRBL raises ALARM:2)."""


@dataclass(frozen=True)
class Move:
    """A planned straight or arc move: target in machine mm, its path length and duration."""

    target: Vec3
    length_mm: float
    duration_s: float  # at 100 % and the real machine's rates, before the speed factor
    feed_mm_min: float


@dataclass(frozen=True)
class Dwell:
    seconds: float


@dataclass(frozen=True)
class SpindleSet:
    direction: int  # 3 = CW, 4 = CCW, 5 = off
    rpm: float


@dataclass(frozen=True)
class ProgramEnd:
    pass


Action = Move | Dwell | SpindleSet | ProgramEnd


@dataclass
class MachineLimits:
    """Travel (mm, positive numbers; machine space is [-travel, 0]) and max rates (mm/min)."""

    travel_mm: Vec3 = (425.0, 425.0, 75.0)
    max_rate_mm_min: Vec3 = (5000.0, 5000.0, 1000.0)
    soft_limits: bool = False


@dataclass
class ModalState:
    """GRBL's parser state; ``position`` is the last planned target in machine mm."""

    motion: float = 0
    plane: int = 17
    absolute: bool = True
    inches: bool = False
    feed_mm_min: float = 0.0
    spindle: int = 5
    rpm: float = 0.0
    coolant: int = 9
    tool: int = 0
    wco: Vec3 = (0.0, 0.0, 0.0)
    position: Vec3 = (0.0, 0.0, 0.0)
    home_position: Vec3 = (0.0, 0.0, 0.0)  # G28 stored position, machine mm

    def gc_report(self) -> str:
        """The ``$G`` line, e.g. ``[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]``."""
        motion = f"G{self.motion:g}"
        units = "G20" if self.inches else "G21"
        dist = "G90" if self.absolute else "G91"
        spindle = f"M{self.spindle}"
        feed = self.feed_mm_min / (MM_PER_INCH if self.inches else 1.0)
        return (
            f"[GC:{motion} G54 G{self.plane} {units} {dist} G94 {spindle} M{self.coolant} "
            f"T{self.tool} F{feed:g} S{self.rpm:g}]"
        )


def parse_words(block: str) -> list[tuple[str, float]]:
    """Split a normalised block into (letter, value) words; raises GcodeFault(1 or 2)."""
    words: list[tuple[str, float]] = []
    pos = 0
    while pos < len(block):
        letter = block[pos]
        if not ("A" <= letter <= "Z"):
            raise GcodeFault(1)
        match = _NUMBER.match(block, pos + 1)
        if match is None:
            raise GcodeFault(2)
        words.append((letter, float(match.group())))
        pos = match.end()
    return words


@dataclass
class _Block:
    g_by_group: dict[str, float] = field(default_factory=dict)
    m_by_group: dict[str, int] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)


def _classify(words: list[tuple[str, float]]) -> _Block:
    block = _Block()
    for letter, value in words:
        if letter == "G":
            group = _G_GROUPS.get(round(value, 1))
            if group is None:
                raise GcodeFault(20)
            if group in block.g_by_group:
                raise GcodeFault(21)
            block.g_by_group[group] = round(value, 1)
        elif letter == "M":
            if value != int(value) or int(value) not in _M_GROUPS:
                raise GcodeFault(20)
            mgroup = _M_GROUPS[int(value)]
            if mgroup in block.m_by_group:
                raise GcodeFault(21)
            block.m_by_group[mgroup] = int(value)
        elif letter in _VALUE_LETTERS:
            if letter in block.values:
                raise GcodeFault(25)
            block.values[letter] = value
        else:
            raise GcodeFault(20)
    return block


def _arc_length(start: Vec3, end: Vec3, block: _Block, state: ModalState, clockwise: bool) -> float:
    a0, a1, lin = _PLANES[state.plane]
    scale = MM_PER_INCH if state.inches else 1.0
    dx, dy = end[a0] - start[a0], end[a1] - start[a1]
    if "R" in block.values:
        radius = block.values["R"] * scale
        chord = math.hypot(dx, dy)
        if chord == 0 or abs(radius) < chord / 2 - 1e-6:
            raise GcodeFault(33)
        sweep = 2 * math.asin(min(1.0, chord / (2 * abs(radius))))
        if radius < 0:
            sweep = 2 * math.pi - sweep
        radius = abs(radius)
    else:
        offsets = [block.values.get(letter, 0.0) * scale for letter in "IJK"]
        if not any(letter in block.values for letter in ("IJK"[a0], "IJK"[a1])):
            raise GcodeFault(35)
        cx, cy = start[a0] + offsets[a0], start[a1] + offsets[a1]
        radius = math.hypot(offsets[a0], offsets[a1])
        if abs(math.hypot(end[a0] - cx, end[a1] - cy) - radius) > max(0.005, radius * 0.001):
            raise GcodeFault(33)
        start_angle = math.atan2(start[a1] - cy, start[a0] - cx)
        end_angle = math.atan2(end[a1] - cy, end[a0] - cx)
        sweep = (start_angle - end_angle) if clockwise else (end_angle - start_angle)
        sweep %= 2 * math.pi
        if sweep < 1e-9:
            sweep = 2 * math.pi  # same start and end point: a full circle
    return math.hypot(radius * sweep, end[lin] - start[lin])


def _target(block: _Block, state: ModalState, machine: bool) -> Vec3:
    scale = MM_PER_INCH if state.inches else 1.0
    target = list(state.position)
    for i, axis in enumerate(AXES):
        if axis not in block.values:
            continue
        value = block.values[axis] * scale
        if machine:
            target[i] = value
        elif state.absolute:
            target[i] = value + state.wco[i]
        else:
            target[i] += value
    return (target[0], target[1], target[2])


def _move(start: Vec3, end: Vec3, length: float, feed: float | None, limits: MachineLimits) -> Move:
    deltas = [abs(e - s) for s, e in zip(start, end, strict=True)]
    axis_bound = max(d / r for d, r in zip(deltas, limits.max_rate_mm_min, strict=True))
    minutes = max(axis_bound, length / feed if feed else 0.0)
    rate = length / minutes if minutes > 0 else 0.0
    return Move(end, length, minutes * 60.0, rate)


def _check_soft_limits(target: Vec3, limits: MachineLimits) -> None:
    if not limits.soft_limits:
        return
    for value, travel in zip(target, limits.travel_mm, strict=True):
        if value > 1e-6 or value < -travel - 1e-6:
            raise SoftLimit()


def _motion(block: _Block, state: ModalState, limits: MachineLimits) -> list[Action]:
    non_modal = block.g_by_group.get("non_modal")
    axis_words = any(axis in block.values for axis in AXES)
    if non_modal in (28, 30):
        actions: list[Action] = []
        if axis_words:  # G28 X.. moves through the given intermediate point first
            via = _target(block, state, machine=False)
            actions.append(_move(state.position, via, math.dist(state.position, via), None, limits))
            state.position = via
        home = state.home_position
        actions.append(_move(state.position, home, math.dist(state.position, home), None, limits))
        state.position = home
        return actions
    motion = block.g_by_group.get("motion", state.motion)
    if "motion" in block.g_by_group:
        state.motion = motion
    if not axis_words:
        if motion in (2, 3) and "motion" in block.g_by_group:
            raise GcodeFault(26)
        return []
    if motion == 80:
        raise GcodeFault(31)
    if non_modal == 53 and motion not in (0, 1):
        raise GcodeFault(30)
    end = _target(block, state, machine=non_modal == 53)
    start = state.position
    if motion != 0 and state.feed_mm_min <= 0:
        raise GcodeFault(22)
    if motion in (2, 3):
        length = _arc_length(start, end, block, state, clockwise=motion == 2)
    else:
        if any(letter in block.values for letter in "IJKR"):
            raise GcodeFault(36)
        length = math.dist(start, end)
    _check_soft_limits(end, limits)
    state.position = end
    return [_move(start, end, length, None if motion == 0 else state.feed_mm_min, limits)]


def _apply_modes(block: _Block, state: ModalState) -> None:
    groups = block.g_by_group
    if "plane" in groups:
        state.plane = int(groups["plane"])
    if "distance" in groups:
        state.absolute = groups["distance"] == 90
    if "units" in groups:
        state.inches = groups["units"] == 20
    if "F" in block.values:
        if block.values["F"] < 0:
            raise GcodeFault(4)
        state.feed_mm_min = block.values["F"] * (MM_PER_INCH if state.inches else 1.0)
    if "T" in block.values:
        if block.values["T"] > 255:
            raise GcodeFault(38)
        state.tool = int(block.values["T"])


def execute_block(block_text: str, state: ModalState, limits: MachineLimits) -> list[Action]:
    """Interpret one normalised block against ``state`` (mutated on success).

    Raises GcodeFault(code) for error:N (state untouched) and SoftLimit for ALARM:2.
    """
    block = _classify(parse_words(block_text))
    if "N" in block.values and not (0 <= block.values["N"] <= 9_999_999):
        raise GcodeFault(27)
    non_modal = block.g_by_group.get("non_modal")
    if "P" in block.values and non_modal != 4:
        raise GcodeFault(36)
    if non_modal == 4 and "P" not in block.values:
        raise GcodeFault(28)
    trial = ModalState(**vars(state))
    _apply_modes(block, trial)
    actions: list[Action] = []
    spindle = block.m_by_group.get("spindle")
    if "S" in block.values:
        if block.values["S"] < 0:
            raise GcodeFault(4)
        trial.rpm = block.values["S"]
    if spindle is not None or ("S" in block.values and trial.spindle != 5):
        trial.spindle = spindle if spindle is not None else trial.spindle
        actions.append(SpindleSet(trial.spindle, trial.rpm if trial.spindle != 5 else 0.0))
    if "coolant" in block.m_by_group:
        trial.coolant = block.m_by_group["coolant"]
    if non_modal == 4:
        actions.append(Dwell(block.values["P"]))
    actions.extend(_motion(block, trial, limits))
    if block.m_by_group.get("stopping") in (2, 30):
        trial.motion, trial.plane, trial.absolute = 1, 17, True
        trial.spindle, trial.coolant = 5, 9
        actions.append(ProgramEnd())
    vars(state).update(vars(trial))
    return actions
