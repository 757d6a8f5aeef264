"""Safety check of G-code against one machine profile: every offending line, with its rule.

Runs the file through the machine model (positions after G91/G92/G20) without timing.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from fabnet.errors import SafetyError
from fabnet.gcode.machine import BED_KEYS, HOTEND_KEYS, MachineState
from fabnet.gcode.parser import GcodeLine, extended_args, parse
from fabnet.profiles.model import CncProfile, FdmProfile, MachineProfile

log = logging.getLogger(__name__)

# Purge lines start just outside the bed (Prusa's own start G-code goes to Y-3).
XY_BELOW_MM = 5.0
# Rounding slack above the volume and below Z=0 (mm).
EDGE_MM = 0.05
# A move may exceed its cap by this factor before it is reported (slicers round to mm/min).
# The cap of any move is the fastest X/Y axis' max feed: Marlin, Klipper and GRBL clamp each
# axis to its own maximum, and slicers rely on that (PrusaSlicer's Z-hops at travel speed,
# Creality's end G-code retracting at F2700 > E max 25 mm/s), so only a feed beyond anything
# the machine can do is reported; raising the firmware's own limits (M203/M201) is reported
# separately.
FEED_TOLERANCE = 1.05

FDM_ONLY = frozenset({"M104", "M109", "M140", "M190", "M106", "M107", "M82", "M83", "M600",
                      "M141", "M191", "M221", "M900", "G10", "G11", "G29", "G80"})  # fmt: skip
CNC_ONLY = frozenset({"M3", "M4", "M5", "M6", "M7", "M8", "M9", "G54", "G55", "G56", "G57",
                      "G58", "G59", "G53"})  # fmt: skip
_GRBL_WRITE_NAMES = ("$RST", "$N", "$I", "$SLP")


class Rule(enum.StrEnum):
    OUT_OF_BOUNDS = "out-of-bounds"
    OVER_TEMPERATURE = "over-temperature"
    OVER_FEED = "over-feed"
    OVER_ACCEL = "over-accel"
    FORBIDDEN = "forbidden-command"
    SETTINGS_WRITE = "settings-write"
    OVER_SPINDLE = "over-spindle"
    WRONG_KIND = "wrong-machine-kind"


@dataclass(frozen=True)
class Violation:
    """One offending line: 1-based ``line_no``, the ``raw`` line, the ``rule`` and why."""

    line_no: int
    raw: str
    rule: Rule
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"line_no": self.line_no, "raw": self.raw, "rule": str(self.rule),
                "message": self.message}  # fmt: skip


class _Checker:
    def __init__(self, profile: MachineProfile, state: MachineState | None = None) -> None:
        self.profile = profile
        self.cnc = isinstance(profile, CncProfile)
        # ``verify`` passes the analysis' planning state: one model serves both (planning
        # changes only the time estimate, never the positions the checks read)
        self.state = state if state is not None else MachineState(profile, plan=False)
        self.out: list[Violation] = []
        v = profile.volume
        self.lo = (-XY_BELOW_MM, -XY_BELOW_MM, -v.z_mm if self.cnc else -EDGE_MM)
        self.hi = (v.x_mm + EDGE_MM, v.y_mm + EDGE_MM, v.z_mm + EDGE_MM)
        if isinstance(profile, CncProfile):
            f = profile.max_feed_mm_min
            self.max_feed = (f.x / 60.0, f.y / 60.0, f.z / 60.0, math.inf)
        else:
            g = profile.max_feed_mm_s
            self.max_feed = (g.x, g.y, g.z, g.e)
        self.path_cap = max(self.max_feed[0], self.max_feed[1])
        self.any_feed_cap = self.path_cap * FEED_TOLERANCE
        self.forbidden = {c for c in profile.forbidden if not c.startswith("$")}
        self.forbidden_prefix = tuple(c for c in profile.forbidden if c.startswith("$"))
        self.machine_coords_line = 0

    def add(self, line: GcodeLine, rule: Rule, message: str) -> None:
        self.out.append(Violation(line.line_no, line.raw, rule, message))

    def line(self, line: GcodeLine) -> None:
        state = self.state
        before = (state.mx, state.my, state.mz, state.net_e)
        command = line.command
        if command and command != ";":
            self._command(line, command)
        elif command == "" and "S" in line.params and self.cnc:
            self._spindle(line)
        state.execute(line)
        if state.moved:
            if "E" in line.params and self.cnc:
                self.add(line, Rule.WRONG_KIND, "E (extruder) axis in a CNC file")
            if line.line_no != self.machine_coords_line:
                self._bounds(line)
            if state.feed_mm_s > self.any_feed_cap:
                self._feed(line, before)

    def _command(self, line: GcodeLine, command: str) -> None:
        if command in self.forbidden:
            self.add(line, Rule.FORBIDDEN, f"{command} is forbidden on {self.profile.id}")
        if command[0] == "$":
            self._grbl(line)
            return
        if self.cnc and command in FDM_ONLY:
            self.add(line, Rule.WRONG_KIND, f"{command} is a 3D-printer command in a CNC file")
        elif not self.cnc and command in CNC_ONLY:
            self.add(line, Rule.WRONG_KIND, f"{command} is a CNC command in a 3D-printer file")
        if command == "G53":
            self.machine_coords_line = line.line_no
        elif command in ("M104", "M109", "M140", "M190"):
            self._temperature(line, command)
        elif command in ("M3", "M4"):
            self._spindle(line)
        elif command in ("M203", "M201"):
            self._limits(line, command)
        elif command[0] not in "GMT":
            self._extended(line, command)

    def _grbl(self, line: GcodeLine) -> None:
        text = line.raw.split(";", 1)[0].strip().lstrip("/").strip().upper()
        if self.forbidden_prefix and text.startswith(self.forbidden_prefix):
            self.add(line, Rule.FORBIDDEN, f"{text[:20]} is forbidden on {self.profile.id}")
        name = line.command.upper()
        if "=" in text and (name[1:].isdigit() or name.startswith(_GRBL_WRITE_NAMES)):
            self.add(line, Rule.SETTINGS_WRITE, f"{name} writes a GRBL setting to EEPROM")
        elif name == "$RST":
            self.add(line, Rule.SETTINGS_WRITE, "$RST resets GRBL settings")
        if not self.cnc:
            self.add(line, Rule.WRONG_KIND, f"{name} is a GRBL command in a 3D-printer file")

    def _temperature(self, line: GcodeLine, command: str) -> None:
        if self.cnc or not isinstance(self.profile, FdmProfile):
            return
        target = max(line.params.get("S", 0.0), line.params.get("R", 0.0))
        bed = command in ("M140", "M190")
        self._temp_limit(line, target, bed)

    def _temp_limit(self, line: GcodeLine, target: float, bed: bool) -> None:
        if not isinstance(self.profile, FdmProfile):
            self.add(line, Rule.WRONG_KIND, "heater command in a CNC file")
            return
        limit = self.profile.max_bed_c if bed else self.profile.max_hotend_c
        if target > limit:
            what = "bed" if bed else "hotend"
            self.add(line, Rule.OVER_TEMPERATURE, f"{what} {target:g} °C over max {limit:g} °C")

    def _extended(self, line: GcodeLine, command: str) -> None:
        params = line.params
        if command == "SET_HEATER_TEMPERATURE" and "TARGET" in params:
            heater = extended_args(line.raw).get("HEATER", "").lower()
            self._temp_limit(line, params["TARGET"], "bed" in heater)
        for key in HOTEND_KEYS:
            if key in params:
                self._temp_limit(line, params[key], False)
        for key in BED_KEYS:
            if key in params:
                self._temp_limit(line, params[key], True)

    def _spindle(self, line: GcodeLine) -> None:
        rpm = line.params.get("S", 0.0)
        if isinstance(self.profile, CncProfile) and rpm > self.profile.spindle_rpm_max:
            limit = self.profile.spindle_rpm_max
            self.add(line, Rule.OVER_SPINDLE, f"spindle {rpm:g} rpm over max {limit:g} rpm")

    def _limits(self, line: GcodeLine, command: str) -> None:
        if isinstance(self.profile, CncProfile):
            return
        prof = self.profile
        caps = prof.max_feed_mm_s if command == "M203" else prof.max_accel_mm_s2
        rule = Rule.OVER_FEED if command == "M203" else Rule.OVER_ACCEL
        for axis in "XYZE":
            value = line.params.get(axis)
            limit = getattr(caps, axis.lower())
            if value is not None and value > limit * FEED_TOLERANCE:
                self.add(line, rule, f"{command} raises {axis} to {value:g} over {limit:g}")

    def _bounds(self, line: GcodeLine) -> None:
        state = self.state
        box = state.arc_box
        lo_pt = box.low() if box is not None else (state.mx, state.my, state.mz)
        hi_pt = box.high() if box is not None else (state.mx, state.my, state.mz)
        for axis, lo, hi, low, high in zip("XYZ", lo_pt, hi_pt, self.lo, self.hi, strict=True):
            if lo < low or hi > high:
                bad = lo if lo < low else hi
                self.add(
                    line, Rule.OUT_OF_BOUNDS,
                    f"{axis} {bad:.3f} mm outside {low + (EDGE_MM if low < 0 and axis == 'Z' else 0):g}..{high - EDGE_MM:g} mm",
                )  # fmt: skip
                return

    def _feed(self, line: GcodeLine, before: tuple[float, float, float, float]) -> None:
        state = self.state
        if (state.mx, state.my, state.mz, state.net_e) == before:
            return
        cap = self.path_cap
        if state.feed_mm_s > cap * FEED_TOLERANCE:
            self.add(
                line, Rule.OVER_FEED,
                f"feed {state.feed_mm_s:.1f} mm/s (F{state.feed_mm_s * 60:g}) over the fastest "
                f"axis' max {cap:g} mm/s",
            )  # fmt: skip


def check(source: str | Path, profile: MachineProfile) -> list[Violation]:
    """Every line of ``source`` (path, ``.gz`` path or G-code text) that would exceed
    ``profile``'s limits, in file order. Raises GcodeError for unparseable lines."""
    checker = _Checker(profile)
    for line in parse(source):
        checker.line(line)
    return checker.out


def assert_safe(source: str | Path, profile: MachineProfile) -> None:
    """Raise SafetyError (carrying the violations) unless ``source`` passes ``check``."""
    violations = check(source, profile)
    if violations:
        first = violations[0]
        raise SafetyError(
            f"{len(violations)} safety violation(s) for {profile.id}; first: line "
            f"{first.line_no}: {first.rule}: {first.message}",
            violations,
        )
