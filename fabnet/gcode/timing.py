"""Print/cut time estimate: a look-ahead planner with trapezoidal moves and jerk junctions.

Each move accelerates at its own rate towards its feed (capped per axis), enters and leaves
at speeds limited by a jerk-style junction model, and the whole chain is smoothed by a backward
and a forward pass, as Marlin's planner does (without its finite buffer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Below this a move is too short to plan (mm); its time is length / feed.
MIN_MOVE_MM = 1e-6
# Heating waits (M109, M190, M116, TEMPERATURE_WAIT) count this long; 0 = not estimated,
# as PrusaSlicer and CuraEngine do.
HEAT_WAIT_S = 0.0


@dataclass
class Planner:
    """Collects moves and dwells; ``total_s()`` runs the passes and sums the times (s).

    Units: lengths mm, speeds mm/s, accelerations mm/s². Moves are appended with ``add``.
    """

    length: list[float] = field(default_factory=list)
    nominal: list[float] = field(default_factory=list)
    accel: list[float] = field(default_factory=list)
    entry_max: list[float] = field(default_factory=list)
    dwell_s: float = 0.0
    _prev_unit: tuple[float, float, float, float] | None = None
    _prev_nominal: float = 0.0

    def stop(self) -> None:
        """The machine comes to a standstill here (dwell, wait, homing, end of file)."""
        self._prev_unit = None

    def add(
        self,
        unit: tuple[float, float, float, float],
        length_mm: float,
        nominal_mm_s: float,
        accel_mm_s2: float,
        jerk_mm_s: tuple[float, float, float, float],
    ) -> None:
        """Append one straight move along ``unit`` (x, y, z, e direction cosines)."""
        if length_mm < MIN_MOVE_MM or nominal_mm_s <= 0.0:
            return
        ux, uy, uz, ue = unit
        jx, jy, jz, je = jerk_mm_s
        # Speed from (or to) rest: no axis may jump by more than its jerk. Unrolled for speed.
        safe = nominal_mm_s
        if ux and jx < safe * abs(ux):
            safe = jx / abs(ux)
        if uy and jy < safe * abs(uy):
            safe = jy / abs(uy)
        if uz and jz < safe * abs(uz):
            safe = jz / abs(uz)
        if ue and je < safe * abs(ue):
            safe = je / abs(ue)
        entry = safe
        prev = self._prev_unit
        if prev is not None:
            # Largest speed at which every axis' velocity changes by no more than its jerk.
            entry = nominal_mm_s if nominal_mm_s < self._prev_nominal else self._prev_nominal
            px, py, pz, pe = prev
            for change, jerk in ((abs(px - ux), jx), (abs(py - uy), jy), (abs(pz - uz), jz),
                                 (abs(pe - ue), je)):  # fmt: skip
                if change > 1e-9 and jerk < entry * change:
                    entry = jerk / change
            if entry < safe:
                entry = safe
        self.length.append(length_mm)
        self.nominal.append(nominal_mm_s)
        self.accel.append(accel_mm_s2 if accel_mm_s2 > 0.0 else 1e9)
        self.entry_max.append(entry)
        self._prev_unit = unit
        self._prev_nominal = nominal_mm_s

    def total_s(self) -> float:
        """Seconds for every move appended plus the dwells."""
        n = len(self.length)
        if n == 0:
            return self.dwell_s
        length, accel, nominal = self.length, self.accel, self.nominal
        entry = list(self.entry_max)
        # Backward pass: each move must be able to decelerate to the next entry (0 at the end).
        next_entry = 0.0
        for i in range(n - 1, -1, -1):
            reachable = math.sqrt(next_entry * next_entry + 2.0 * accel[i] * length[i])
            if reachable < entry[i]:
                entry[i] = reachable
            next_entry = entry[i]
        # Forward pass: each move must be reachable by accelerating from the previous entry.
        for i in range(1, n):
            reachable = math.sqrt(entry[i - 1] ** 2 + 2.0 * accel[i - 1] * length[i - 1])
            if reachable < entry[i]:
                entry[i] = reachable
        total = self.dwell_s
        for i in range(n):
            exit_v = entry[i + 1] if i + 1 < n else 0.0
            total += trapezoid_s(length[i], entry[i], exit_v, nominal[i], accel[i])
        return total


def trapezoid_s(length: float, v_in: float, v_out: float, v_max: float, accel: float) -> float:
    """Seconds to travel ``length`` mm entering at ``v_in``, leaving at ``v_out`` (mm/s),
    cruising at most at ``v_max`` with constant acceleration ``accel`` (mm/s²)."""
    v_in = min(v_in, v_max)
    v_out = min(v_out, v_max)
    d_acc = (v_max * v_max - v_in * v_in) / (2.0 * accel)
    d_dec = (v_max * v_max - v_out * v_out) / (2.0 * accel)
    if d_acc + d_dec <= length:
        return (v_max - v_in) / accel + (v_max - v_out) / accel + (length - d_acc - d_dec) / v_max
    peak = math.sqrt(max((2.0 * accel * length + v_in * v_in + v_out * v_out) / 2.0, 0.0))
    peak = max(peak, v_in, v_out)
    return max((peak - v_in) / accel + (peak - v_out) / accel, length / max(peak, 1e-9))
