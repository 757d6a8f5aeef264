"""The overflow rule (pure; issue 12): which peer hub, if any, a queued task is offered to.

A task goes abroad only when home cannot serve it: no local machine could ever take it, none
can finish it by its deadline, or it has waited longer than ``OverflowPolicy.max_wait``. It
then goes only to a peer that may receive it and can make it:

- the peering is active and confirmed both ways;
- the peer's terms share the task's kind and material, and its tasks in flight are under its
  ``max_in_flight`` cap;
- the design's license allows sending it to that peer (``licensing.may_send``: never a closed
  design, an ``-NC`` one only to a peer that charges no credits);
- the peer's latest capacity summary is fresh and has an idle machine of the task's kind and
  material whose build volume fits the part.

Among those, the one with the most idle fitting machines wins, then the first by name, so the
same inputs always choose the same peer. The rule decides; it sends nothing (that is the
transfer, still to come) and reads nothing, so a tick can call it for each queued task with
what it read once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fabnet.core.machines import Machine, fits, same_material
from fabnet.core.states import MachineKind
from fabnet.errors import InvalidInput
from fabnet.federation.capacity import DEFAULT_MAX_AGE_S, CapacitySummary
from fabnet.federation.licensing import may_send
from fabnet.store.peers import Peer, PeerState

DEFAULT_MAX_WAIT = timedelta(hours=24)
DEFAULT_CAPACITY_MAX_AGE = timedelta(seconds=DEFAULT_MAX_AGE_S)


@dataclass(frozen=True)
class OverflowPolicy:
    """How long a task may wait before it is offered abroad anyway, and how old a peer's
    capacity summary may be and still be believed."""

    max_wait: timedelta = DEFAULT_MAX_WAIT
    capacity_max_age: timedelta = DEFAULT_CAPACITY_MAX_AGE

    def __post_init__(self) -> None:
        for name in ("max_wait", "capacity_max_age"):
            if not getattr(self, name) > timedelta(0):
                raise InvalidInput(f"{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class OverflowTask:
    """A queued task as the rule sees it: what it needs (``hours`` nominal, at speed factor 1),
    its deadline, how long it has waited and its design's license (SPDX)."""

    task_id: str
    kind: MachineKind
    material: str
    size_mm: tuple[float, float, float]
    hours: float
    deadline: datetime | None
    waited: timedelta
    license: str


@dataclass(frozen=True)
class LocalSlot:
    """A local machine that could take the task (``could_take``), and when it is next free
    (its current work's end; ``now`` or earlier when it is idle)."""

    machine_id: str
    speed_factor: float
    free_at: datetime


@dataclass(frozen=True)
class PeerOption:
    """A peer as the rule sees it: the peering, its tasks from this hub now in flight and its
    latest capacity summary (None: it never advertised)."""

    peer: Peer
    in_flight: int
    capacity: CapacitySummary | None


@dataclass(frozen=True)
class OverflowDecision:
    """The peer to offer the task to (None: keep it here), why, and why each peer that was
    considered could not have it (name, reason), for the log."""

    peer: str | None
    reason: str
    refused: tuple[tuple[str, str], ...] = ()


def could_take(machine: Machine, task: OverflowTask) -> bool:
    """Whether a local machine could ever take the task, whatever it is doing now: its kind,
    a material its maker accepts, a build volume the part fits, the maker's hour limit, and
    not on hold. (The nozzle is not considered.)"""
    return (
        machine.kind is task.kind
        and not machine.held
        and any(same_material(m, task.material) for m in machine.matchable_materials)
        and fits(task.size_mm, machine.volume_mm)
        and machine.policy.allows_hours(machine.hours_for(task.hours))
    )


def earliest_local_finish(task: OverflowTask, slots: Iterable[LocalSlot],
                          now: datetime) -> datetime | None:  # fmt: skip
    """When the task would be done at the earliest here (None: no local machine can take it)."""
    ends = [max(s.free_at, now) + timedelta(hours=task.hours / s.speed_factor) for s in slots]
    return min(ends, default=None)


def why_abroad(task: OverflowTask, slots: Iterable[LocalSlot], now: datetime,
               policy: OverflowPolicy) -> str | None:  # fmt: skip
    """Why the task should be offered to a peer, or None when home can serve it."""
    finish = earliest_local_finish(task, slots, now)
    if finish is None:
        return "no local machine can ever take it"
    if task.deadline is not None and finish > task.deadline:
        return (f"no local machine can finish it by its deadline {task.deadline.isoformat()} "
                f"(earliest {finish.isoformat()})")  # fmt: skip
    if task.waited > policy.max_wait:
        return f"it waited {task.waited} here, longer than {policy.max_wait}"
    return None


def peer_refusal(task: OverflowTask, option: PeerOption, now: datetime,
                 policy: OverflowPolicy) -> str | None:  # fmt: skip
    """Why ``option`` cannot have the task, or None when it can."""
    peer, terms = option.peer, option.peer.terms
    if peer.state is not PeerState.ACTIVE:
        return f"the peering is {peer.state.value}"
    if not peer.confirmed:
        return "the peering is not confirmed both ways"
    if task.kind.value not in terms.kinds:
        return f"{task.kind.value} is not among the kinds shared ({', '.join(terms.kinds)})"
    if terms.materials and not any(same_material(m, task.material) for m in terms.materials):
        return f"{task.material} is not among the materials shared ({', '.join(terms.materials)})"
    if option.in_flight >= terms.max_in_flight:
        return f"{option.in_flight} tasks in flight, at its cap of {terms.max_in_flight}"
    licensed = may_send(task.license, terms.charges_credits)
    if not licensed.allowed:
        return licensed.reason
    capacity = option.capacity
    if capacity is None or not capacity.fresh(now, policy.capacity_max_age):
        return "no fresh capacity advertised"
    if idle_fitting(task, capacity) == 0:
        return f"no idle {task.kind.value} machine with {task.material} that fits the part"
    return None


def idle_fitting(task: OverflowTask, capacity: CapacitySummary) -> int:
    """Idle machines the summary reports of the task's kind and material whose largest build
    volume takes the part."""
    return sum(
        line.idle
        for line in capacity.lines
        if line.kind is task.kind
        and same_material(line.material, task.material)
        and fits(task.size_mm, line.volume_mm)
    )


def choose_peer(task: OverflowTask, slots: Iterable[LocalSlot], peers: Iterable[PeerOption],
                now: datetime, policy: OverflowPolicy) -> OverflowDecision:  # fmt: skip
    """The peer to offer ``task`` to, or None with the reason it stays (see the module)."""
    why = why_abroad(task, slots, now, policy)
    if why is None:
        return OverflowDecision(None, "a local machine can take it in time")
    refused: list[tuple[str, str]] = []
    fitting: list[tuple[int, str]] = []
    for option in sorted(peers, key=lambda o: o.peer.name):
        refusal = peer_refusal(task, option, now, policy)
        if refusal is not None:
            refused.append((option.peer.name, refusal))
            continue
        assert option.capacity is not None  # peer_refusal refuses a peer without capacity
        fitting.append((-idle_fitting(task, option.capacity), option.peer.name))
    if not fitting:
        return OverflowDecision(None, f"{why}, but no peer can take it", tuple(refused))
    idle, name = min(fitting)
    return OverflowDecision(name, f"{why}; {name} has {-idle} idle fitting machines",
                            tuple(refused))  # fmt: skip
