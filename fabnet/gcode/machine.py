"""A machine model that executes parsed G-code: positions, modes, offsets, limits, totals.

Shared by the analyser (totals, time) and the safety checker (where each move ends).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fabnet.gcode.kinematics import Box, Limits, arc_points
from fabnet.gcode.parser import COMMENT, GcodeLine, extended_args
from fabnet.gcode.timing import HEAT_WAIT_S, Planner
from fabnet.profiles.model import GcodeFlavour, MachineProfile

INCH_MM = 25.4
HOTEND_KEYS = ("EXTRUDER", "EXTRUDER_TEMP", "HOTEND", "HOTEND_TEMP", "NOZZLE", "NOZZLE_TEMP")
BED_KEYS = ("BED", "BED_TEMP")
_WAITS = frozenset({"M109", "M190", "M116", "M400", "G28", "G29", "G80", "TEMPERATURE_WAIT"})

# A cut removes material instead of depositing it: fabnet's CNC generator declares what the
# parts weigh in this comment, and the analyser reports it as the job's grams.
PART_MASS_COMMENT = "; part_mass_g:"


def _comment_number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0.0 <= value < 1e9 else None


class MachineState:
    """Executes GcodeLines one by one. Positions are logical (what the file says) plus the G92
    offset, giving machine coordinates ``mx, my, mz`` (mm). After a motion command ``moved``
    is True and ``arc_box`` holds the swept box of an arc (None for straight moves)."""

    def __init__(self, profile: MachineProfile | None = None, plan: bool = True) -> None:
        self.limits = Limits.from_profile(profile)
        self.grbl = profile is not None and profile.flavour is GcodeFlavour.GRBL
        self.plan = plan
        self.planner = Planner()
        self.x = self.y = self.z = self.e = 0.0
        self.ox = self.oy = self.oz = 0.0
        self.mx = self.my = self.mz = 0.0
        self.relative = False
        self.e_relative = False
        self.scale = 1.0
        self.feed_mm_s = 25.0
        self.motion = "G0"
        self.moved = False
        self.arc_box: Box | None = None
        self.net_e = 0.0
        self.filament_high_water_mm = 0.0
        self.commands = self.moves = 0
        self.layer_markers_cura = self.layer_markers_prusa = 0
        self.layer_heights: set[float] = set()
        self.all_box, self.extrude_box, self.cut_box = Box(), Box(), Box()
        self.max_hotend_c = self.max_bed_c = self.max_feed_mm_min = 0.0
        self.spindle_max_rpm = 0.0
        self.part_mass_g: float | None = None  # declared by fabnet's CNC generator
        self.extrude_mm = self.feed_mm = self.rapid_mm = 0.0
        self._was_extruding = False
        self._handlers: dict[str, Callable[[dict[str, float]], None]] = {
            "G90": self._g90,
            "G91": self._g91,
            "M82": self._m82,
            "M83": self._m83,
            "G20": self._g20,
            "G21": self._g21,
            "G92": self._g92,
            "G28": self._g28,
            "G4": self._dwell,
            "M104": self._hotend,
            "M109": self._hotend_wait,
            "M140": self._bed,
            "M190": self._bed_wait,
            "M3": self._spindle,
            "M4": self._spindle,
            "M201": self.limits.set_max_accel,
            "M203": self.limits.set_max_feed,
            "M204": self.limits.set_accel,
            "M205": self.limits.set_jerk,
        }

    def execute(self, line: GcodeLine) -> None:
        """Apply one command to the state; unknown commands change nothing."""
        command, params = line.command, line.params
        self.moved = False
        if command == "G1" or command == "G0":
            self.commands += 1
            self.motion = command
            self._move(command, params)
        elif command == COMMENT:
            raw = line.raw.lstrip()
            if raw.startswith(";LAYER:"):
                self.layer_markers_cura += 1
            elif raw.startswith(";LAYER_CHANGE"):
                self.layer_markers_prusa += 1
            elif raw.startswith(PART_MASS_COMMENT):
                self.part_mass_g = _comment_number(raw[len(PART_MASS_COMMENT) :])
        elif command == "":
            self.commands += 1
            if "S" in params:
                self._spindle(params)
            if self.motion in ("G0", "G1", "G2", "G3") and params.keys() & set("XYZEF"):
                self._dispatch_motion(self.motion, params)
        elif command == "G2" or command == "G3":
            self.commands += 1
            self.motion = command
            self._dispatch_motion(command, params)
        else:
            self.commands += 1
            handler = self._handlers.get(command)
            if handler is not None:
                handler(params)
            elif command[0] not in "GMT$":
                self._extended(command, params, line.raw)
            if self.plan and command in _WAITS:
                self.planner.stop()

    def _dispatch_motion(self, command: str, params: dict[str, float]) -> None:
        if command in ("G2", "G3"):
            self._arc(command == "G2", params)
        else:
            self._move(command, params)

    # --- motion -------------------------------------------------------------------------

    def _target(self, params: dict[str, float]) -> tuple[float, float, float]:
        s, rel = self.scale, self.relative
        x, y, z = self.x, self.y, self.z
        if "X" in params:
            x = x + params["X"] * s if rel else params["X"] * s
        if "Y" in params:
            y = y + params["Y"] * s if rel else params["Y"] * s
        if "Z" in params:
            z = z + params["Z"] * s if rel else params["Z"] * s
        if "F" in params:
            feed = params["F"] * s
            if feed > self.max_feed_mm_min:
                self.max_feed_mm_min = feed
            if feed > 0.0:
                self.feed_mm_s = feed / 60.0
        return x, y, z

    def _extrude(self, params: dict[str, float]) -> float:
        if "E" not in params:
            return 0.0
        value = params["E"]
        if self.relative or self.e_relative:
            de = value
            self.e += value
        else:
            de = value - self.e
            self.e = value
        self.net_e += de
        if self.net_e > self.filament_high_water_mm:
            self.filament_high_water_mm = self.net_e
        return de

    def _move(self, command: str, params: dict[str, float]) -> None:
        x, y, z = self._target(params)
        de = self._extrude(params)
        dx, dy, dz = x - self.x, y - self.y, z - self.z
        self.x, self.y, self.z = x, y, z
        sx, sy, sz = self.mx, self.my, self.mz
        self.mx, self.my, self.mz = x + self.ox, y + self.oy, z + self.oz
        self.moved = True
        self.arc_box = None
        self.moves += 1
        dist = math.sqrt(dx * dx + dy * dy + dz * dz)
        self.all_box.add(self.mx, self.my, self.mz)
        extruding = de > 0.0 and dist > 0.0
        if extruding:
            if not self._was_extruding:
                self.extrude_box.add(sx, sy, sz)
            self.extrude_box.add(self.mx, self.my, self.mz)
            self.layer_heights.add(round(self.mz, 3))
            self.extrude_mm += dist
        elif command == "G0":
            self.rapid_mm += dist
        elif dist > 0.0:
            self.cut_box.add(self.mx, self.my, self.mz)
            self.feed_mm += dist
        self._was_extruding = extruding
        if self.plan:
            self._plan(dx, dy, dz, de, dist, extruding)

    def _plan(self, dx: float, dy: float, dz: float, de: float, dist: float, ext: bool) -> None:
        lim = self.limits
        if dist > 0.0:
            unit = (dx / dist, dy / dist, dz / dist, de / dist)
            accel = lim.print_accel if ext else lim.travel_accel
            length = dist
        elif de != 0.0:
            unit = (0.0, 0.0, 0.0, 1.0 if de > 0 else -1.0)
            accel = lim.retract_accel
            length = abs(de)
        else:
            return
        nominal, accel = lim.cap(unit, self.feed_mm_s, accel)
        self.planner.add(unit, length, nominal, accel, lim.jerk)

    def _arc(self, clockwise: bool, params: dict[str, float]) -> None:
        sx, sy = self.x, self.y
        x, y, z = self._target(params)
        s = self.scale
        points, length = arc_points(
            (sx, sy),
            (x, y),
            clockwise,
            params.get("I", 0.0) * s,
            params.get("J", 0.0) * s,
            params["R"] * s if "R" in params else None,
        )
        de = self._extrude(params)
        dz = z - self.z
        length = math.hypot(length, dz)
        self.x, self.y, self.z = x, y, z
        self.mx, self.my, self.mz = x + self.ox, y + self.oy, z + self.oz
        box = Box()
        box.add(sx + self.ox, sy + self.oy, self.mz)
        box.add(self.mx, self.my, self.mz)
        for px, py in points:
            box.add(px + self.ox, py + self.oy, self.mz)
        self.moved, self.arc_box = True, box
        self.moves += 1
        self.all_box.merge(box)
        if de > 0.0:
            self.extrude_box.merge(box)
            self.extrude_mm += length
        else:
            self.cut_box.merge(box)
            self.feed_mm += length
        if self.plan and length > 0.0:
            chord = math.hypot(x - sx, y - sy) or 1.0
            unit = ((x - sx) / chord, (y - sy) / chord, 0.0, 0.0)
            nominal, accel = self.limits.cap(unit, self.feed_mm_s, self.limits.print_accel)
            self.planner.add(unit, length, nominal, accel, self.limits.jerk)

    # --- modes, offsets, waits ----------------------------------------------------------

    def _g90(self, params: dict[str, float]) -> None:
        self.relative = False

    def _g91(self, params: dict[str, float]) -> None:
        self.relative = True

    def _m82(self, params: dict[str, float]) -> None:
        self.e_relative = False

    def _m83(self, params: dict[str, float]) -> None:
        self.e_relative = True

    def _g20(self, params: dict[str, float]) -> None:
        self.scale = INCH_MM

    def _g21(self, params: dict[str, float]) -> None:
        self.scale = 1.0

    def _g92(self, params: dict[str, float]) -> None:
        s = self.scale
        if not params:  # bare G92 zeroes every axis here (Marlin)
            params = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
        if "X" in params:
            self.x = params["X"] * s
            self.ox = self.mx - self.x
        if "Y" in params:
            self.y = params["Y"] * s
            self.oy = self.my - self.y
        if "Z" in params:
            self.z = params["Z"] * s
            self.oz = self.mz - self.z
        if "E" in params:
            self.e = params["E"]

    def _g28(self, params: dict[str, float]) -> None:
        axes = [a for a in "XYZ" if a in params] or ["X", "Y", "Z"]
        for axis in axes:
            setattr(self, axis.lower(), 0.0)
            setattr(self, "o" + axis.lower(), 0.0)
            setattr(self, "m" + axis.lower(), 0.0)

    def _dwell(self, params: dict[str, float]) -> None:
        if "S" in params:
            seconds = params["S"]
        elif "P" in params:
            seconds = params["P"] if self.grbl else params["P"] / 1000.0
        else:
            seconds = 0.0
        self.planner.dwell_s += max(seconds, 0.0)
        self.planner.stop()

    def _hotend(self, params: dict[str, float]) -> None:
        target = max(params.get("S", 0.0), params.get("R", 0.0))
        self.max_hotend_c = max(self.max_hotend_c, target)

    def _heat_wait(self, params: dict[str, float]) -> None:
        self.planner.dwell_s += HEAT_WAIT_S

    def _hotend_wait(self, params: dict[str, float]) -> None:
        self._hotend(params)
        self._heat_wait(params)

    def _bed_wait(self, params: dict[str, float]) -> None:
        self._bed(params)
        self._heat_wait(params)

    def _bed(self, params: dict[str, float]) -> None:
        target = max(params.get("S", 0.0), params.get("R", 0.0))
        self.max_bed_c = max(self.max_bed_c, target)

    def _spindle(self, params: dict[str, float]) -> None:
        self.spindle_max_rpm = max(self.spindle_max_rpm, params.get("S", 0.0))

    def _extended(self, command: str, params: dict[str, float], raw: str) -> None:
        if command == "SET_HEATER_TEMPERATURE":
            heater = extended_args(raw).get("HEATER", "").lower()
            target = params.get("TARGET", 0.0)
            if "bed" in heater:
                self.max_bed_c = max(self.max_bed_c, target)
            else:
                self.max_hotend_c = max(self.max_hotend_c, target)
        elif command == "SET_VELOCITY_LIMIT":
            self.limits.set_klipper_velocity(params)
        elif command == "TEMPERATURE_WAIT":
            self.planner.dwell_s += HEAT_WAIT_S
        for key in HOTEND_KEYS:
            if key in params:
                self.max_hotend_c = max(self.max_hotend_c, params[key])
        for key in BED_KEYS:
            if key in params:
                self.max_bed_c = max(self.max_bed_c, params[key])
