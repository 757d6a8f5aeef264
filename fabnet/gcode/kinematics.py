"""Geometry and motion limits for the machine model: boxes, arcs, feed/accel/jerk caps."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fabnet.profiles.model import CncProfile, MachineProfile

Vec4 = tuple[float, float, float, float]

# Generic Marlin limits used when no profile is given (mm/s, mm/s², mm/s).
DEFAULT_MAX_FEED: Vec4 = (500.0, 500.0, 12.0, 120.0)
DEFAULT_MAX_ACCEL: Vec4 = (1000.0, 1000.0, 200.0, 5000.0)
DEFAULT_JERK: Vec4 = (10.0, 10.0, 0.4, 5.0)
DEFAULT_ACCEL = 1000.0
# GRBL has no jerk; its junction deviation (0.01 mm) allows about this much corner speed.
CNC_JERK: Vec4 = (2.0, 2.0, 1.0, 1.0)


class Box:
    """A growing axis-aligned box (mm); ``seen`` is False until a point is added."""

    __slots__ = ("lo", "hi", "seen")

    def __init__(self) -> None:
        self.lo = [math.inf, math.inf, math.inf]
        self.hi = [-math.inf, -math.inf, -math.inf]
        self.seen = False

    def add(self, x: float, y: float, z: float) -> None:
        lo, hi = self.lo, self.hi
        if x < lo[0]:
            lo[0] = x
        if x > hi[0]:
            hi[0] = x
        if y < lo[1]:
            lo[1] = y
        if y > hi[1]:
            hi[1] = y
        if z < lo[2]:
            lo[2] = z
        if z > hi[2]:
            hi[2] = z
        self.seen = True

    def merge(self, other: Box) -> None:
        if other.seen:
            self.add(*other.lo)
            self.add(*other.hi)

    def low(self) -> tuple[float, float, float]:
        return (self.lo[0], self.lo[1], self.lo[2]) if self.seen else (0.0, 0.0, 0.0)

    def high(self) -> tuple[float, float, float]:
        return (self.hi[0], self.hi[1], self.hi[2]) if self.seen else (0.0, 0.0, 0.0)


@dataclass
class Limits:
    """The machine's current motion limits; G-code (M201/M203/M204/M205, Klipper
    SET_VELOCITY_LIMIT) may change them while the file runs."""

    max_feed: list[float]
    max_accel: list[float]
    jerk: Vec4
    print_accel: float
    travel_accel: float
    retract_accel: float

    @classmethod
    def from_profile(cls, profile: MachineProfile | None) -> Limits:
        if profile is None:
            return cls(
                list(DEFAULT_MAX_FEED), list(DEFAULT_MAX_ACCEL), DEFAULT_JERK,
                DEFAULT_ACCEL, DEFAULT_ACCEL, DEFAULT_MAX_ACCEL[3],
            )  # fmt: skip
        a = profile.max_accel_mm_s2
        if isinstance(profile, CncProfile):
            f = profile.max_feed_mm_min
            feed = [f.x / 60.0, f.y / 60.0, f.z / 60.0, 1e9]
            xy = max(a.x, a.y)
            return cls(feed, [a.x, a.y, a.z, 1e9], CNC_JERK, xy, xy, xy)
        f, j = profile.max_feed_mm_s, profile.jerk_mm_s
        return cls(
            [f.x, f.y, f.z, f.e], [a.x, a.y, a.z, a.e], (j.x, j.y, j.z, j.e),
            profile.print_accel_mm_s2, profile.travel_accel_mm_s2, a.e,
        )  # fmt: skip

    def cap(self, unit: Vec4, feed_mm_s: float, accel: float) -> tuple[float, float]:
        """(speed mm/s, acceleration mm/s²) of a move along ``unit``, capped per axis."""
        max_feed, max_accel = self.max_feed, self.max_accel
        for i in range(4):
            comp = unit[i]
            if comp:
                c = comp if comp > 0.0 else -comp
                if max_feed[i] < feed_mm_s * c:
                    feed_mm_s = max_feed[i] / c
                if max_accel[i] < accel * c:
                    accel = max_accel[i] / c
        return feed_mm_s, accel

    def set_max_accel(self, params: dict[str, float]) -> None:
        """M201 X Y Z E (mm/s²)."""
        for i, axis in enumerate("XYZE"):
            if params.get(axis, 0.0) > 0.0:
                self.max_accel[i] = params[axis]

    def set_max_feed(self, params: dict[str, float]) -> None:
        """M203 X Y Z E (mm/s)."""
        for i, axis in enumerate("XYZE"):
            if params.get(axis, 0.0) > 0.0:
                self.max_feed[i] = params[axis]

    def set_accel(self, params: dict[str, float]) -> None:
        """M204 S (print and travel), P (print), T (travel), R (retract), mm/s²."""
        if params.get("S", 0.0) > 0.0:
            self.print_accel = self.travel_accel = params["S"]
        if params.get("P", 0.0) > 0.0:
            self.print_accel = params["P"]
        if params.get("T", 0.0) > 0.0:
            self.travel_accel = params["T"]
        if params.get("R", 0.0) > 0.0:
            self.retract_accel = params["R"]

    def set_jerk(self, params: dict[str, float]) -> None:
        """M205 X Y Z E jerk (mm/s)."""
        jerk = list(self.jerk)
        for i, axis in enumerate("XYZE"):
            if params.get(axis, 0.0) > 0.0:
                jerk[i] = params[axis]
        self.jerk = (jerk[0], jerk[1], jerk[2], jerk[3])

    def set_klipper_velocity(self, params: dict[str, float]) -> None:
        """SET_VELOCITY_LIMIT VELOCITY= ACCEL= SQUARE_CORNER_VELOCITY=."""
        if params.get("VELOCITY", 0.0) > 0.0:
            self.max_feed[0] = self.max_feed[1] = params["VELOCITY"]
        if params.get("ACCEL", 0.0) > 0.0:
            self.print_accel = self.travel_accel = params["ACCEL"]
        if params.get("SQUARE_CORNER_VELOCITY", 0.0) > 0.0:
            scv = params["SQUARE_CORNER_VELOCITY"]
            self.jerk = (scv, scv, self.jerk[2], self.jerk[3])


def arc_points(
    start: tuple[float, float],
    end: tuple[float, float],
    clockwise: bool,
    i: float,
    j: float,
    r: float | None,
) -> tuple[list[tuple[float, float]], float]:
    """Extreme points (x, y) an XY arc passes through, and its length (mm).

    The centre is ``start + (i, j)``, or, with ``r``, the one at distance |r| from both ends on
    the side G2/G3 and the sign of ``r`` select. Start == end with I/J is a full circle."""
    sx, sy = start
    ex, ey = end
    if r is not None:
        chord = math.hypot(ex - sx, ey - sy)
        if chord == 0.0:
            return [], 0.0
        h = math.sqrt(max(r * r - chord * chord / 4.0, 0.0))
        left = (-(ey - sy) / chord, (ex - sx) / chord)
        sign = -1.0 if clockwise else 1.0
        sign = -sign if r < 0 else sign
        cx = (sx + ex) / 2.0 + sign * h * left[0]
        cy = (sy + ey) / 2.0 + sign * h * left[1]
    else:
        cx, cy = sx + i, sy + j
    radius = math.hypot(sx - cx, sy - cy)
    a0 = math.atan2(sy - cy, sx - cx)
    a1 = math.atan2(ey - cy, ex - cx)
    tau = 2.0 * math.pi
    sweep = ((a0 - a1) if clockwise else (a1 - a0)) % tau
    if sweep < 1e-9:
        sweep = tau if r is None else 0.0
    points = []
    for k in range(4):
        theta = k * math.pi / 2.0
        offset = ((a0 - theta) if clockwise else (theta - a0)) % tau
        if offset <= sweep:
            points.append((cx + radius * math.cos(theta), cy + radius * math.sin(theta)))
    return points, radius * sweep
