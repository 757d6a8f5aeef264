"""The motion side of the simulated GRBL: a 15-block planner executed in scaled time, feed hold.

Not thread-safe by itself: the simulator calls it under its own lock. Times are
``time.monotonic()`` seconds; durations are divided by the speed factor.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass

from fabnet.sim.grbl_gcode import Vec3

PLANNER_BLOCKS = 15
HOLD_DECEL_S = 0.05  # real seconds a feed hold spends decelerating (Hold:1) before Hold:0


class HoldPhase(enum.Enum):
    NONE = "none"
    DECELERATING = "decelerating"  # Hold:1
    COMPLETE = "complete"  # Hold:0


@dataclass
class PlannedBlock:
    """A move queued in the planner: start/end in machine mm, duration in real seconds."""

    start: Vec3
    end: Vec3
    duration_s: float
    feed_mm_min: float
    progress_s: float = 0.0

    def position(self) -> Vec3:
        if self.duration_s <= 0:
            return self.end
        f = min(1.0, self.progress_s / self.duration_s)
        return (
            self.start[0] + (self.end[0] - self.start[0]) * f,
            self.start[1] + (self.end[1] - self.start[1]) * f,
            self.start[2] + (self.end[2] - self.start[2]) * f,
        )


class Motion:
    """Planner plus stepper: ``advance(now)`` moves time forward; ``hold``/``resume`` pause it."""

    def __init__(self, speed: float, hold_decel_s: float = HOLD_DECEL_S) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self.hold_decel_s = hold_decel_s
        self.blocks: collections.deque[PlannedBlock] = collections.deque()
        self.position: Vec3 = (0.0, 0.0, 0.0)  # machine mm, where the tool is now
        self.hold = HoldPhase.NONE
        self.cycle_active = False  # a cycle was started and blocks are executing
        self.dwell_until = 0.0
        self._hold_complete_at = 0.0
        self._last = 0.0

    @property
    def planner_free(self) -> int:
        return PLANNER_BLOCKS - len(self.blocks)

    @property
    def moving(self) -> bool:
        """True while blocks run and no hold stops them (GRBL's Run state)."""
        return self.cycle_active and self.hold is HoldPhase.NONE

    def queue(self, end: Vec3, duration_s: float, feed_mm_min: float) -> None:
        """Add a block from the last planned point (real time = duration_s / speed).

        The caller checks ``planner_free`` first; raises RuntimeError if the planner is full.
        """
        if len(self.blocks) >= PLANNER_BLOCKS:
            raise RuntimeError("planner full")
        start = self.blocks[-1].end if self.blocks else self.position
        self.blocks.append(PlannedBlock(start, end, duration_s / self.speed, feed_mm_min))

    def start_cycle(self, now: float) -> None:
        """Auto cycle start: begin executing queued blocks unless held."""
        if self.blocks and not self.cycle_active and self.hold is HoldPhase.NONE:
            self.cycle_active = True
            self._last = now

    def current_feed(self) -> float:
        return self.blocks[0].feed_mm_min if self.moving and self.blocks else 0.0

    def advance(self, now: float) -> None:
        """Execute blocks for the real time elapsed since the last call."""
        if self.hold is HoldPhase.DECELERATING and now >= self._hold_complete_at:
            self.hold = HoldPhase.COMPLETE
        if not self.moving:
            self._last = now
            return
        budget = now - self._last
        self._last = now
        while budget > 0 and self.blocks:
            block = self.blocks[0]
            step = min(budget, block.duration_s - block.progress_s)
            block.progress_s += step
            budget -= step
            self.position = block.position()
            if block.progress_s >= block.duration_s:
                self.position = block.end
                self.blocks.popleft()
        if not self.blocks:
            self.cycle_active = False

    def feed_hold(self, now: float) -> bool:
        """``!``: decelerate to a stop (Hold:1, then Hold:0); when idle, hold at once.

        Returns False if a hold was already active.
        """
        if self.hold is not HoldPhase.NONE:
            return False
        if self.moving:
            self.hold = HoldPhase.DECELERATING
            self._hold_complete_at = now + self.hold_decel_s
        else:
            self.hold = HoldPhase.COMPLETE
        return True

    def resume(self, now: float) -> bool:
        """``~``: continue after a completed hold; ignored while still decelerating."""
        if self.hold is not HoldPhase.COMPLETE:
            return False
        self.hold = HoldPhase.NONE
        self._last = now
        self.cycle_active = bool(self.blocks)
        return True

    def stop_all(self) -> bool:
        """Kill motion and flush the planner (reset, alarm); True if it interrupted motion."""
        interrupted = self.moving or self.hold is HoldPhase.DECELERATING
        self.blocks.clear()
        self.cycle_active = False
        self.hold = HoldPhase.NONE
        return interrupted


class DoorPhase(enum.Enum):
    NONE = -1
    CLOSED = 0  # Door:0 door closed, ready to resume
    AJAR = 1  # Door:1 stopped, door still open
    STOPPING = 2  # Door:2 door opened, decelerating
    RESTORING = 3  # Door:3 door closed, restoring
