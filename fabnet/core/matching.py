"""Matching queued tasks to idle machines: capability, fit, policy, priority and fairness.

``MachineIndex`` keeps idle machines grouped by capability — (kind, material) then (nozzle,
build volume) — with a heap per group ordered by fairness: the maker with the fewest recent
machine-hours first, ties to the fastest machine. A task looks only at the groups of its kind
and material whose volume it fits (a handful), never at every machine, so a round costs about
O(tasks · (groups + log machines)). Within a round, each assignment adds its hours to the
maker's tally so work spreads across makers rather than piling onto the fastest.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from fabnet.core.machines import Machine, fits
from fabnet.core.states import MachineKind, MachineState
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput

NOZZLE_DECIMALS = 2  # nozzles equal to 0.01 mm are the same nozzle
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TaskRequest:
    """What a queued task needs: the matcher's view of it.

    ``size_mm`` is the part's (or plate's) bounding box; ``nozzle_mm`` None accepts any nozzle;
    ``estimated_hours`` is nominal (speed factor 1); higher ``priority`` goes first, then the
    earlier ``deadline``, then the older ``created_at``. ``avoid_machines`` are never chosen
    (e.g. machines that already failed this task).
    """

    task_id: str
    kind: MachineKind
    material: str
    size_mm: tuple[float, float, float]
    estimated_hours: float
    nozzle_mm: float | None = None
    priority: int = 0
    deadline: datetime | None = None
    created_at: datetime | None = None
    avoid_machines: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Assignment:
    """A task matched to a machine; ``hours`` is the estimate on that machine."""

    task_id: str
    machine_id: str
    maker_id: str
    hours: float
    auto_accept: bool


def task_order_key(task: TaskRequest) -> tuple[int, datetime, datetime, str]:
    """Sort key: priority (high first), deadline (none last), age, id."""
    deadline = task.deadline or _FAR_FUTURE
    created = task.created_at or _FAR_FUTURE
    return (-task.priority, deadline, created, task.task_id)


def order_tasks(tasks: Iterable[TaskRequest]) -> list[TaskRequest]:
    """Tasks in the order they are matched (see ``task_order_key``); times must be aware."""
    return sorted(tasks, key=task_order_key)


# heap entry: (maker hours when pushed, -speed, machine id, machine version)
_Entry = tuple[float, float, str, int]
_GroupKey = tuple[float, tuple[float, float, float]]


class MachineIndex:
    """Idle machines by capability, updated incrementally; the state one matcher owns.

    Not thread-safe: one thread (the hub's scheduler) owns it and feeds it machine updates.
    """

    def __init__(self, recent_hours: Mapping[str, float] | None = None) -> None:
        self._machines: dict[str, Machine] = {}
        self._version: dict[str, int] = {}
        self._available: set[str] = set()
        self._groups: dict[tuple[MachineKind, str], dict[_GroupKey, list[_Entry]]] = {}
        self._maker_hours: dict[str, float] = dict(recent_hours or {})

    def __len__(self) -> int:
        return len(self._available)

    def upsert(self, machine: Machine) -> None:
        """Add or replace a machine; it becomes matchable if ``idle``, else it leaves the pool."""
        mid = machine.machine_id
        version = self._version.get(mid, 0) + 1
        self._version[mid] = version
        self._machines[mid] = machine
        if machine.state is not MachineState.IDLE or machine.held:
            self._available.discard(mid)
            return
        self._available.add(mid)
        for material in machine.matchable_materials:
            self._push(machine, material, version)

    def remove(self, machine_id: str) -> None:
        """Forget a machine (unknown ids are ignored)."""
        self._machines.pop(machine_id, None)
        self._available.discard(machine_id)
        self._version[machine_id] = self._version.get(machine_id, 0) + 1

    def get(self, machine_id: str) -> Machine | None:
        """The machine as last upserted, or None."""
        return self._machines.get(machine_id)

    def available(self) -> list[Machine]:
        """The machines a ``match`` may give work now (idle, not on hold, not reserved), for
        a filter that looks at the candidates before matching (the budget guard)."""
        return [self._machines[mid] for mid in sorted(self._available)]

    def is_available(self, machine_id: str) -> bool:
        """True if the machine is idle and not reserved by a previous ``match``."""
        return machine_id in self._available

    def maker_hours(self, maker_id: str) -> float:
        """The maker's recent machine-hours as the matcher counts them."""
        return self._maker_hours.get(maker_id, 0.0)

    def set_recent_hours(self, recent_hours: Mapping[str, float]) -> None:
        """Replace each maker's recent machine-hours (e.g. last 7 days from the ledger)."""
        hours = dict(recent_hours)
        if hours == self._maker_hours:
            return
        self._maker_hours = hours
        for by_group in self._groups.values():
            for key, heap in by_group.items():
                fresh = [
                    (self.maker_hours(self._machines[e[2]].maker_id), e[1], e[2], e[3])
                    for e in heap
                    if self._valid(e)
                ]
                heapq.heapify(fresh)
                by_group[key] = fresh

    def match(self, tasks: Iterable[TaskRequest], now: datetime) -> list[Assignment]:
        """Match ``tasks`` to available machines at ``now``; each machine gets at most one.

        Tasks are taken in ``order_tasks`` order; a task nothing can do is left out. Matched
        machines are reserved (no longer available) until ``upsert`` brings them back.
        Raises ``InvalidInput`` if ``now`` is naive.
        """
        now = require_utc("now", now)
        window_cache: dict[int, bool] = {}
        closed: list[tuple[list[_Entry], _Entry]] = []
        result: list[Assignment] = []
        for task in order_tasks(tasks):
            found = self._match_one(task, now, window_cache, closed)
            if found is not None:
                result.append(found)
        for heap, entry in closed:
            heapq.heappush(heap, entry)
        return result

    def _push(self, machine: Machine, material: str, version: int) -> None:
        key = (machine.kind, material)
        group: _GroupKey = (round(machine.nozzle_mm, NOZZLE_DECIMALS), machine.volume_mm)
        heap = self._groups.setdefault(key, {}).setdefault(group, [])
        entry = (
            self.maker_hours(machine.maker_id),
            -machine.speed_factor,
            machine.machine_id,
            version,
        )
        heapq.heappush(heap, entry)

    def _valid(self, entry: _Entry) -> bool:
        mid = entry[2]
        return mid in self._available and self._version.get(mid) == entry[3]

    def _candidate_heaps(self, task: TaskRequest) -> list[list[_Entry]]:
        groups = self._groups.get((task.kind, task.material), {})
        nozzle = None if task.nozzle_mm is None else round(task.nozzle_mm, NOZZLE_DECIMALS)
        return [
            heap
            for (group_nozzle, volume), heap in groups.items()
            if heap and (nozzle is None or nozzle == group_nozzle) and fits(task.size_mm, volume)
        ]

    def _match_one(
        self,
        task: TaskRequest,
        now: datetime,
        window_cache: dict[int, bool],
        closed: list[tuple[list[_Entry], _Entry]],
    ) -> Assignment | None:
        stash: list[tuple[list[_Entry], _Entry]] = []
        best: tuple[_Entry, list[_Entry]] | None = None
        for heap in self._candidate_heaps(task):
            top = self._eligible_top(heap, task, now, window_cache, stash, closed)
            if top is not None and (best is None or top[:3] < best[0][:3]):
                best = (top, heap)
        if best is not None:
            # pop before the stash goes back: stashed entries may sort before the winner
            heapq.heappop(best[1])
        for heap, entry in stash:
            heapq.heappush(heap, entry)
        if best is None:
            return None
        entry = best[0]
        machine = self._machines[entry[2]]
        self._available.discard(machine.machine_id)
        hours = machine.hours_for(task.estimated_hours)
        self._maker_hours[machine.maker_id] = self.maker_hours(machine.maker_id) + hours
        return Assignment(
            task.task_id, machine.machine_id, machine.maker_id, hours, machine.policy.auto_accept
        )

    def _eligible_top(
        self,
        heap: list[_Entry],
        task: TaskRequest,
        now: datetime,
        window_cache: dict[int, bool],
        stash: list[tuple[list[_Entry], _Entry]],
        closed: list[tuple[list[_Entry], _Entry]],
    ) -> _Entry | None:
        """Leave the best machine of ``heap`` for ``task`` on top, setting others aside.

        Invalid entries are dropped, entries whose maker's tally grew are re-keyed, machines
        outside their window wait in ``closed`` (for the round), those this task cannot use
        in ``stash`` (for this task only).
        """
        while heap:
            entry = heap[0]
            if not self._valid(entry):
                heapq.heappop(heap)
                continue
            machine = self._machines[entry[2]]
            hours_now = self.maker_hours(machine.maker_id)
            if hours_now != entry[0]:
                heapq.heapreplace(heap, (hours_now, entry[1], entry[2], entry[3]))
                continue
            policy = machine.policy
            open_now = window_cache.get(id(policy))
            if open_now is None:
                open_now = window_cache[id(policy)] = policy.available(now)
            if not open_now:
                closed.append((heap, heapq.heappop(heap)))
                continue
            if machine.machine_id in task.avoid_machines or not policy.allows_hours(
                machine.hours_for(task.estimated_hours)
            ):
                stash.append((heap, heapq.heappop(heap)))
                continue
            return entry
        return None


def validate_request(task: TaskRequest) -> None:
    """Raise ``InvalidInput`` naming the field if a request cannot be matched as given."""
    if any(not s > 0 for s in task.size_mm) or len(task.size_mm) != 3:
        raise InvalidInput(f"size_mm must be three sizes > 0, got {task.size_mm!r}")
    if task.estimated_hours < 0:
        raise InvalidInput(f"estimated_hours must be >= 0, got {task.estimated_hours!r}")
