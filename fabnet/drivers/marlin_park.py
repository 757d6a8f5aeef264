"""Pause with park for the Marlin driver: the modes a file leaves the firmware in, and the
lines that park the head away from the print and bring it back exactly as it was.

The driver sends these once every line before them has finished (``G4 P0``: Marlin's dwell
first empties the planner; ``M400`` is kept for a file's end, which simulators and logs count
as a finished file), so the firmware's
modes are those the host saw in the lines it sent (``ModalState``), and the head's position is
what ``M114`` reports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fabnet.drivers.marlin_job import Job
from fabnet.drivers.marlin_protocol import MarlinStream
from fabnet.errors import DeviceError

log = logging.getLogger(__name__)
SYNC_MOVES = "G4 P0"  # wait until every buffered move has finished (not M400: see above)


@dataclass(frozen=True)
class ParkSettings:
    """Where and how a paused print is parked (mm, mm/min).

    lift_mm: Z lift above the print, never past ``max_z_mm`` of the driver; x_mm/y_mm: the
    park point (None: stay over the print, lifted); retract_mm at retract_feed_mm_min pulls the
    filament back so the nozzle does not ooze onto the part.
    """

    lift_mm: float = 5.0
    x_mm: float | None = 0.0
    y_mm: float | None = 0.0
    retract_mm: float = 1.0
    retract_feed_mm_min: float = 1800.0
    travel_feed_mm_min: float = 3000.0
    z_feed_mm_min: float = 600.0


@dataclass
class ModalState:
    """The modes the sent lines set: G90/G91 (XYZ and E), M82/M83 (E alone), last feed F."""

    xyz_relative: bool = False
    e_relative: bool = False
    feed_mm_min: float | None = None

    def follow(self, cmd: str) -> None:
        """Update from one sent command (as stripped by ``strip_gcode``)."""
        words = cmd.upper().split()
        if not words:
            return
        code = words[0]
        if code in ("G90", "G91"):  # Marlin: G90/G91 set E's mode too
            self.xyz_relative = self.e_relative = code == "G91"
        elif code in ("M82", "M83"):
            self.e_relative = code == "M83"
        elif code in ("G0", "G1", "G2", "G3"):
            for word in words[1:]:
                if word.startswith("F"):
                    try:
                        self.feed_mm_min = float(word[1:])
                    except ValueError:
                        pass


@dataclass(frozen=True)
class Parked:
    """What a resume must restore: position (mm), lift done (mm), modes at the pause."""

    position_mm: tuple[float, float, float]
    lift_mm: float
    modes: ModalState = field(default_factory=ModalState)


def lift_within(settings: ParkSettings, z_mm: float, max_z_mm: float | None) -> float:
    """The Z lift (mm) that keeps the head at or below ``max_z_mm`` (None: no bound)."""
    lift = settings.lift_mm
    if max_z_mm is not None:
        lift = min(lift, max_z_mm - z_mm)
    return max(0.0, lift)


def park_lines(settings: ParkSettings, parked: Parked) -> list[str]:
    """Retract, lift, park: relative moves for the first two, then the absolute park point."""
    s = settings
    lines = ["G91", f"G1 E-{s.retract_mm:.2f} F{s.retract_feed_mm_min:.0f}"]
    if parked.lift_mm > 0:
        lines.append(f"G1 Z{parked.lift_mm:.2f} F{s.z_feed_mm_min:.0f}")
    lines.append("G90")
    axes = []
    if s.x_mm is not None:
        axes.append(f"X{s.x_mm:.2f}")
    if s.y_mm is not None:
        axes.append(f"Y{s.y_mm:.2f}")
    if axes:
        lines.append(f"G1 {' '.join(axes)} F{s.travel_feed_mm_min:.0f}")
    return lines


def resume_lines(settings: ParkSettings, parked: Parked) -> list[str]:
    """Back over the print, down, un-retract (E ends where it was), then the file's modes and
    feed again."""
    s = settings
    x, y, z = parked.position_mm
    lines = ["G90", f"G1 X{x:.3f} Y{y:.3f} F{s.travel_feed_mm_min:.0f}"]
    if parked.lift_mm > 0:
        lines.append(f"G1 Z{z:.3f} F{s.z_feed_mm_min:.0f}")
    lines += ["G91", f"G1 E{s.retract_mm:.2f} F{s.retract_feed_mm_min:.0f}"]
    modes = parked.modes
    lines.append("G91" if modes.xyz_relative else "G90")
    if modes.e_relative != modes.xyz_relative:
        lines.append("M83" if modes.e_relative else "M82")
    if modes.feed_mm_min is not None:
        lines.append(f"G1 F{modes.feed_mm_min:g}")
    return lines


def pause_parked(
    job: Job,
    stream: MarlinStream,
    settings: ParkSettings,
    max_z_mm: float | None,
    position: Callable[[], tuple[float, float, float] | None],
    modes: ModalState,
    closing: threading.Event,
    where: str,
) -> bool:
    """Run on the job's thread once a pause is asked for: park while paused, then return to
    the print. False once cancelled or closing (the head stays parked; the caller makes the
    machine safe). ``position`` is the last ``M114`` answer; raises DeviceError without one."""
    stop = job.should_stop(closing)
    if not stream.wait_all_acked(stop):
        return False
    run_job_lines(job, stream, [SYNC_MOVES, "M114"], stop)  # buffered moves done, then where
    here = position()
    if here is None:
        raise DeviceError(f"{where}: no position after M114; cannot park")
    parked = Parked(here, lift_within(settings, here[2], max_z_mm), replace(modes))
    run_job_lines(job, stream, park_lines(settings, parked), stop)
    log.info("%s: paused and parked (from %s, Z +%.2f)", where, here, parked.lift_mm)
    if not job.wait_until_runnable(closing):
        return False
    run_job_lines(job, stream, resume_lines(settings, parked), stop)
    log.info("%s: resumed at %s", where, here)
    return True


def run_job_lines(
    job: Job, stream: MarlinStream, commands: list[str], stop: Callable[[], bool]
) -> None:
    """The driver's own lines among a job's (progress leaves them out), acknowledged before
    returning unless ``stop`` says to give up."""
    for cmd in commands:
        if not stream.wait_room(stop):
            return
        job.injected(stream.submit(cmd))
    stream.wait_all_acked(stop)
