"""What an agent says about its machines: capabilities, status, telemetry and progress
messages built from a profile, a policy and a driver's ``Status``."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from fabnet.bus.messages import (
    TASK_RELEASED_PREFIX,
    Capabilities,
    MachineState,
    MachineStatus,
    MachineTelemetry,
    TaskCommand,
    TaskEvent,
    TaskFailed,
    TaskProgress,
    Xyz,
)
from fabnet.config import MachineConfig
from fabnet.core.states import FailureCause
from fabnet.drivers.base import DriverError, DriverState, Status
from fabnet.gcode import Violation
from fabnet.profiles import CncProfile, MachineProfile

MAX_REASON_CHARS = 1000
VIOLATIONS_SHOWN = 3

_E = TypeVar("_E", bound=TaskEvent)


def event_for(cls: type[_E], cmd: TaskCommand, **fields: Any) -> _E:
    """The event ``cls`` about the machine, task and attempt ``cmd`` names."""
    return cls(machine=cmd.machine, task_id=cmd.task_id, attempt=cmd.attempt, **fields)


def capabilities(config: MachineConfig, profile: MachineProfile) -> Capabilities:
    """The capabilities digest of one machine: its profile's kind, volume (mm) and nozzle or
    default tool diameter (mm), and its maker's policy (materials, hours, windows)."""
    v = profile.volume
    hours = config.policy.max_task_hours  # infinite: no limit (pushed by the hub)
    if isinstance(profile, CncProfile):
        try:
            nozzle: float | None = profile.tool().diameter_mm
        except KeyError:
            nozzle = None
    else:
        nozzle = profile.nozzle_mm
    return Capabilities(
        profile=profile.id,
        kind=profile.kind,
        volume_mm=Xyz(v.x_mm, v.y_mm, v.z_mm),
        nozzle_mm=nozzle,
        materials=config.policy.materials,
        driver=config.driver,
        max_task_hours=hours if math.isfinite(hours) else None,
        auto_accept=config.policy.auto_accept,
        windows=config.policy.windows,
    )


def machine_status(
    config: MachineConfig, caps: Capabilities, state: MachineState, task_id: str | None
) -> MachineStatus:
    return MachineStatus(
        machine=config.machine_id,
        state=state,
        capabilities=caps,
        materials_loaded=(config.material,),
        task_id=task_id,
    )


def telemetry(machine: str, task_id: str | None, status: Status) -> MachineTelemetry:
    """Telemetry from a driver status; percent only while a task runs."""
    t = status.telemetry
    position = Xyz(*t.position_mm) if t.position_mm is not None else None
    return MachineTelemetry(
        machine=machine,
        task_id=task_id,
        percent=min(status.progress.percent, 100.0) if task_id else None,
        hotend_c=t.hotend_c[0] if t.hotend_c else None,
        hotend_target_c=t.hotend_c[1] if t.hotend_c else None,
        bed_c=t.bed_c[0] if t.bed_c else None,
        bed_target_c=t.bed_c[1] if t.bed_c else None,
        spindle_rpm=t.spindle_rpm,
        position_mm=position,
    )


def progress(
    machine: str, task_id: str, attempt: int, status: Status, lines_total: int
) -> TaskProgress:
    """A progress event. Drivers that count bytes, not lines (OctoPrint, sim), get their line
    count estimated from the byte fraction and the file's ``lines_total``."""
    p = status.progress
    percent = min(max(p.percent, 0.0), 100.0)
    if p.lines_total:
        done, total = p.lines_done, p.lines_total
    else:
        done, total = round(lines_total * percent / 100.0), lines_total
    return TaskProgress(
        machine=machine,
        task_id=task_id,
        attempt=attempt,
        percent=percent,
        lines_done=done,
        lines_total=total,
        elapsed_s=max(p.elapsed_s, 0.0),
        remaining_s=max(p.remaining_s, 0.0) if p.remaining_s is not None else None,
    )


def released(machine: str, task_id: str, attempt: int, why: str) -> TaskFailed:
    """The event that hands a task back to the hub (``TASK_RELEASED_PREFIX``): queued again
    at once, not counted as a failed attempt."""
    reason = clip(TASK_RELEASED_PREFIX + why)
    return TaskFailed(
        machine=machine, task_id=task_id, attempt=attempt, reason=reason,
        cause=FailureCause.RELEASED,
    )  # fmt: skip


# Words in a driver's error (its message or the firmware's raw line, lower case) that say
# which way the job ended, checked in this order: the drivers word their errors this way
# (marlin: "thermal fault:", "the firmware reset during the job", "reading/writing <port>
# failed", "no ok for"; the firmware texts of marlin_dialects.FATAL_ERRORS; GRBL "ALARM:3"
# "Reset while in motion"; the simulator's "Thermal Runaway"); anything else is a fault the
# firmware reported.
_CAUSE_WORDS: tuple[tuple[FailureCause, tuple[str, ...]], ...] = (
    (
        FailureCause.THERMAL_FAULT,
        ("thermal", "runaway", "mintemp", "maxtemp", "heating failed", "heater"),
    ),
    (FailureCause.MACHINE_RESET, ("reset",)),
    (
        FailureCause.LINK_LOST,
        (
            "serial port",
            "reading ",
            "writing ",
            "no ok for",
            "timed out",
            "not answering",
            "connection",
            "disconnected",
        ),
    ),
    (FailureCause.FIRMWARE_FAULT, ("halted", "kill()", "printer stopped", "fatal:")),
)


def failure_cause(error: DriverError | None, state: DriverState) -> FailureCause:
    """The reason code for a job that ended in driver ``state`` before it finished. A machine
    that went idle was stopped at the machine by its maker. Otherwise the error's words
    decide (``_CAUSE_WORDS``), so OctoPrint's "Offline after error" with a MINTEMP is a
    thermal fault; failing them, a disconnected machine lost its link and any other error is
    a firmware fault."""
    if state is DriverState.IDLE:
        return FailureCause.CANCELLED_BY_MAKER
    text = f"{error.message}\n{error.raw or ''}".lower() if error else ""
    for cause, words in _CAUSE_WORDS:
        if any(word in text for word in words):
            return cause
    if state is DriverState.DISCONNECTED:
        return FailureCause.LINK_LOST
    return FailureCause.FIRMWARE_FAULT


def violations_reason(profile_id: str, violations: list[Violation]) -> str:
    """ "unsafe G-code for prusa_mk3s: line 12: M104 S400 (over-temperature: ...); ..." naming
    the first few offending lines."""
    shown = "; ".join(
        f"line {v.line_no}: {v.raw.strip()} ({v.rule}: {v.message})"
        for v in violations[:VIOLATIONS_SHOWN]
    )
    more = len(violations) - VIOLATIONS_SHOWN
    tail = f"; and {more} more" if more > 0 else ""
    return clip(f"unsafe G-code for {profile_id}: {shown}{tail}")


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
