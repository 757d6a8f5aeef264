"""GRBL conversations that frame a job: waking the board, the unlock policy, the safe stop.

Safe Z after a stop: with homing enabled (``$22=1``) machine coordinates are trustworthy, so the
stop retracts with ``G53 G0 Z<machine_safe_z_mm>`` (default -1: 1 mm below the homed top of Z,
whatever the job's work offset). Without homing, machine coordinates start wherever the machine
was switched on, so it retracts in work coordinates to ``safe_z_mm`` (the profile's safe Z).
It never moves Z down: a tool already above the target stays where it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fabnet.drivers.grbl_link import GrblLink
from fabnet.drivers.grbl_protocol import FEED_HOLD, SOFT_RESET, GrblState, alarm_meaning
from fabnet.errors import DeviceError, DeviceTimeout

log = logging.getLogger(__name__)

_GRBL_LINE_PREFIXES = ("ok", "error:", "ALARM:", "[", "<", "$", "Grbl ")


def line_code(line: str) -> int:
    """The number of ``error:N`` / ``ALARM:N``; -1 if there is none."""
    tail = line.partition(":")[2]
    return int(tail) if tail.isdigit() else -1


@dataclass(frozen=True)
class SessionPolicy:
    """What the maker allows and how long to wait (seconds); lengths in mm."""

    allow_unlock: bool
    homing_enabled: bool
    safe_z_mm: float
    machine_safe_z_mm: float
    response_timeout_s: float
    hold_timeout_s: float
    connect_timeout_s: float


def wake_up(link: GrblLink, connect_timeout_s: float) -> str:
    """``\\r\\n\\r\\n`` and wait for the banner (soft reset if none); the banner line.

    Raises DeviceError (not GRBL 1.1, with the raw line) or DeviceTimeout (no answer).
    """
    before = link.banner_count
    link.write(b"\r\n\r\n")
    banner = link.wait_banner(before, min(1.0, connect_timeout_s))
    if banner is None:
        reject_foreign(link)
        link.write(SOFT_RESET)  # already awake: a soft reset prints the banner again
        banner = link.wait_banner(before, connect_timeout_s)
    if banner is None:
        reject_foreign(link)
        raise DeviceTimeout(
            f"no GRBL banner from {link.port} at {link.baud} baud within "
            f"{connect_timeout_s} s: check the port, the baud rate and the cable"
        )
    if not banner.startswith("Grbl 1.1"):
        raise DeviceError(f"{link.port} runs {banner!r}; fabnet drives GRBL 1.1", banner)
    log.info("connected to %s on %s", banner, link.port)
    return banner


def reject_foreign(link: GrblLink) -> None:
    """Raise DeviceError with the first line no GRBL would send, if any arrived."""
    for line in link.seen_lines:
        if not line.startswith(_GRBL_LINE_PREFIXES):
            raise DeviceError(f"{link.port} does not answer like GRBL: got {line!r}", line)


def require_unlocked(link: GrblLink, allow_unlock: bool, timeout_s: float) -> None:
    """Send ``$X`` to an alarm-locked GRBL only when allowed; otherwise raise DeviceError."""
    status = link.wait_status(lambda s: True, timeout_s)
    if status is None:
        raise DeviceTimeout(f"GRBL on {link.port} sent no status report")
    if status.state is not GrblState.ALARM:
        return
    raw = next((ln for ln in link.seen_lines if "to unlock" in ln), link.last_alarm)
    if not allow_unlock:
        raise DeviceError(
            f"GRBL on {link.port} is in alarm and locked: home it ($H) or unlock it ($X) "
            "at the machine, or set allow_unlock in this machine's config",
            raw or status.raw,
        )
    log.warning("GRBL on %s is locked; unlocking with $X (allow_unlock is set)", link.port)
    link.command("$X", timeout_s)


def make_safe(link: GrblLink, policy: SessionPolicy) -> None:
    """Feed hold, wait for Hold:0, soft reset, ``$X`` only if the reset locked GRBL and that is
    allowed, ``M5``, retract Z. Raises DeviceError if GRBL stays locked, DeviceTimeout."""
    link.write(FEED_HOLD)
    stopped = link.wait_status(
        lambda s: (
            s.state in (GrblState.IDLE, GrblState.ALARM, GrblState.DOOR)
            or (s.state is GrblState.HOLD and s.substate == 0)
        ),
        policy.hold_timeout_s,
    )
    if stopped is None:
        log.warning("feed hold on %s did not complete; resetting anyway", link.port)
    before, link.last_alarm = link.banner_count, None
    link.write(SOFT_RESET)
    if link.wait_banner(before, policy.connect_timeout_s) is None:
        raise DeviceTimeout(f"GRBL on {link.port} sent no banner after a soft reset")
    for stale in link.drain_replies():  # oks of flushed lines, ALARM:3, the banner
        log.debug("after reset: %r", stale)
    timeout_s = policy.response_timeout_s
    link.command("$G", timeout_s, expect_prefix="[GC:")  # skips oks that were still on the wire
    status = link.wait_status(lambda s: True, timeout_s)
    if status is None:
        raise DeviceTimeout(f"GRBL on {link.port} sent no status report after a reset")
    if status.state is GrblState.ALARM:
        alarm = link.last_alarm or "ALARM"
        if not policy.allow_unlock:
            raise DeviceError(
                f"GRBL is locked in {alarm} ({alarm_meaning(line_code(alarm))}) after the stop; "
                "the spindle is off but Z was not raised: home ($H) or unlock ($X) it",
                alarm,
            )
        log.warning("unlocking %s after %s (allow_unlock is set)", link.port, alarm)
        link.command("$X", timeout_s)
    link.command("M5", timeout_s)
    retract = retract_line(link, policy)
    if retract is not None:
        link.command(retract, timeout_s)
    if link.wait_status(lambda s: s.state is GrblState.IDLE, timeout_s) is None:
        raise DeviceTimeout(f"GRBL on {link.port} did not come to rest after the retract")


def retract_line(link: GrblLink, policy: SessionPolicy) -> str | None:
    """The block that lifts Z to safety, or None when Z is already at or above it."""
    mpos = link.mpos
    if policy.homing_enabled:
        if mpos is not None and mpos[2] >= policy.machine_safe_z_mm - 1e-3:
            return None
        return f"G53G0Z{policy.machine_safe_z_mm:.3f}"
    if mpos is not None and mpos[2] - link.wco[2] >= policy.safe_z_mm - 1e-3:
        return None
    return f"G21G90G0Z{policy.safe_z_mm:.3f}"
