"""A maker's policy as pure decisions: accept, ask the maker, or decline an offer, and why.

No I/O and no clock: the caller passes the machine's situation and the current local time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from fabnet.config import MachinePolicy
from fabnet.core.cron import CronExpr, window_open
from fabnet.core.machines import same_material, within_task_hours
from fabnet.errors import ConfigError, InvalidInput

SECONDS_PER_HOUR = 3600.0


class Verdict(enum.Enum):
    ACCEPT = "accept"
    ASK = "ask"  # the offer is acceptable; the maker answers it (auto_accept is off)
    DECLINE = "decline"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str | None = None  # set when declined


@dataclass(frozen=True)
class OfferFacts:
    """What the policy looks at in an offer: material name and estimated machine time (s)."""

    material: str
    est_machine_s: float


@dataclass(frozen=True)
class MachineSituation:
    """The machine as the policy sees it: loaded material and whether it holds work already
    (a running task, an accepted offer waiting for its assignment or an offer the maker has
    not answered)."""

    loaded_material: str
    holding: str | None = None  # task id it is busy with, if any


def parse_windows(policy: MachinePolicy, machine_id: str) -> tuple[CronExpr, ...]:
    """The policy's availability windows parsed; ConfigError naming the machine and window."""
    try:
        return tuple(CronExpr.parse(text) for text in policy.windows)
    except InvalidInput as exc:
        raise ConfigError(f"machine {machine_id}: policy.windows: {exc}") from None


def decide_offer(
    policy: MachinePolicy,
    windows: tuple[CronExpr, ...],
    machine: MachineSituation,
    offer: OfferFacts,
    now: datetime,
) -> Decision:
    """Decide an offer by ``policy``. ``now`` is the maker's local time: windows are read in
    it. Checks, in order: the machine is free, the material is loaded and accepted, the
    estimate is within ``max_task_hours``, ``now`` is inside a window (when any are set)."""
    if machine.holding is not None:
        return Decision(Verdict.DECLINE, f"machine busy (task {machine.holding})")
    if not same_material(offer.material, machine.loaded_material):
        return Decision(
            Verdict.DECLINE, f"material {offer.material} not loaded ({machine.loaded_material})"
        )
    if not any(same_material(offer.material, m) for m in policy.materials):
        accepted = ", ".join(policy.materials) or "none"
        return Decision(
            Verdict.DECLINE, f"material {offer.material} not accepted by policy ({accepted})"
        )
    hours = offer.est_machine_s / SECONDS_PER_HOUR
    if not within_task_hours(hours, policy.max_task_hours):
        return Decision(
            Verdict.DECLINE, f"estimated {hours:.3g} h exceeds max {policy.max_task_hours:g} h"
        )
    if not window_open(windows, now):
        return Decision(Verdict.DECLINE, "outside availability window")
    return Decision(Verdict.ACCEPT if policy.auto_accept else Verdict.ASK)
