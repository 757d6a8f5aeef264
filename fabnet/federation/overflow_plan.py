"""One overflow round over the store (issue 12): which queued tasks should leave this hub, and
for each the peer the overflow rule chooses (``fabnet.federation.overflow``).

The hub's tick calls ``plan_overflow`` after its own match round (so tasks a local machine
just took are no longer queued), with the peers, their fresh capacity
(``CapacityService.fresh()``) and their tasks in flight from this hub. Nothing is sent here:
the transfer of a planned task to its peer is the next step (not written yet).

A local machine counts when it is working (idle or busy, not held) and could ever take the
task; it is free now when idle, else after the remaining hours of the tasks it holds. Work
queued ahead of the task is not counted, so a deadline is judged optimistically for home.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind
from fabnet.core.timeutil import require_utc
from fabnet.federation.capacity import CapacitySummary, working
from fabnet.federation.overflow import (
    LocalSlot,
    OverflowDecision,
    OverflowPolicy,
    OverflowTask,
    PeerOption,
    choose_peer,
    could_take,
    why_abroad,
)
from fabnet.store import Store
from fabnet.store.peers import (
    Peer,
    QueuedForOverflow,
    queued_for_overflow,
    remaining_hours_by_machine,
)

DEFAULT_LIMIT = 200  # queued tasks looked at per round, oldest first
DEFAULT_POLICY = OverflowPolicy()


@dataclass(frozen=True)
class Planned:
    """A queued task that should leave this hub, and the rule's decision for it."""

    task_id: str
    decision: OverflowDecision


def plan_overflow(store: Store, peers: Iterable[Peer], capacities: Mapping[str, CapacitySummary],
                  now: datetime, policy: OverflowPolicy = DEFAULT_POLICY,
                  in_flight: Mapping[str, int] | None = None,
                  limit: int = DEFAULT_LIMIT,
                  avoid: Mapping[str, Collection[str]] | None = None) -> list[Planned]:  # fmt: skip
    """The queued tasks (oldest first, up to ``limit``) that home cannot serve, each with the
    peer chosen for it or the reasons none can have it. A peer chosen counts as one more task
    in flight for the rest of the round, so the round never plans past its cap. ``avoid``:
    task id -> peers not to choose for it (they refused it lately), so it may go to another."""
    now = require_utc("now", now)
    machines = [m for m in store.catalog.list_machines() if working(m)]
    left = remaining_hours_by_machine(store.db)
    counts = dict(in_flight or {})
    peer_list = list(peers)
    planned: list[Planned] = []
    for queued in queued_for_overflow(store.db, limit):
        task = overflow_task(queued, now)
        slots = local_slots(task, machines, left, now)
        if why_abroad(task, slots, now, policy) is None:
            continue
        skip = (avoid or {}).get(task.task_id, ())
        options = [PeerOption(p, counts.get(p.name, 0), capacities.get(p.name))
                   for p in peer_list if p.name not in skip]  # fmt: skip
        decision = choose_peer(task, slots, options, now, policy)
        if decision.peer is not None:
            counts[decision.peer] = counts.get(decision.peer, 0) + 1
        planned.append(Planned(task.task_id, decision))
    return planned


def overflow_task(queued: QueuedForOverflow, now: datetime) -> OverflowTask:
    return OverflowTask(queued.task_id, MachineKind(queued.kind), queued.material,
                        queued.size_mm, queued.hours, queued.deadline,
                        max(now - queued.created_at, timedelta(0)), queued.license)  # fmt: skip


def local_slots(task: OverflowTask, machines: Iterable[Machine], left: Mapping[str, float],
                now: datetime) -> list[LocalSlot]:  # fmt: skip
    """The working local machines that could take ``task``, each with when it is free."""
    return [
        LocalSlot(
            m.machine_id,
            m.speed_factor,
            now + timedelta(hours=left.get(m.machine_id, 0.0) / m.speed_factor),
        )  # fmt: skip
        for m in machines
        if could_take(m, task)
    ]
