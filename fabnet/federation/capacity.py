"""A hub's capacity as it advertises it to its peers (pure; issue 12).

Hubs advertise capacity as a summary, not machine by machine: a peer learns which kinds and
materials this hub can make, the largest part it can take for each, how many machines are
idle and how many hours of work already wait, which is all the overflow rule needs
(``fabnet.federation.overflow``) and all a peer should learn about another community's makers.

A summary is computed from the machines and the queued hours, carries the time it was
computed and goes stale after an age the receiver sets: an old summary says nothing about
who is idle now, so it is ignored rather than trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fabnet.core.machines import Machine, same_material
from fabnet.core.states import MachineKind, MachineState
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput

DEFAULT_MAX_AGE_S = 600.0  # a summary older than this says nothing about who is idle now
MAX_LINES = 500  # a hub offers at most this many (kind, material) lines
MAX_MATERIAL_CHARS = 32
MAX_VOLUME_MM = 100_000.0
MAX_COUNT = 1_000_000
MAX_HOURS = 1e9
WORKING_STATES = frozenset({MachineState.IDLE, MachineState.BUSY})


@dataclass(frozen=True)
class CapacityLine:
    """One (kind, material) a hub can make: how many working machines have it loaded, how many
    of them are idle, and the largest build volume among them (x, y, z mm, by volume)."""

    kind: MachineKind
    material: str
    machines: int
    idle: int
    volume_mm: tuple[float, float, float]


@dataclass(frozen=True)
class CapacitySummary:
    """What ``hub`` can make, as of ``computed_at``: its lines, its idle machine count (each
    machine once, whatever it has loaded) and the hours of queued work per material."""

    hub: str
    computed_at: datetime
    idle_machines: int
    lines: tuple[CapacityLine, ...]
    queued_hours: Mapping[str, float]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({line.kind.value for line in self.lines}))

    @property
    def materials(self) -> tuple[str, ...]:
        return tuple(sorted({line.material for line in self.lines}))

    def fresh(self, now: datetime, max_age: timedelta) -> bool:
        """True while the summary is at most ``max_age`` old at ``now``."""
        return now - self.computed_at <= max_age


def working(machine: Machine) -> bool:
    """A machine that counts as capacity: reporting (idle or busy) and not on hold."""
    return machine.state in WORKING_STATES and not machine.held


def summarize(hub: str, machines: Iterable[Machine], queued_hours: Mapping[str, float],
              now: datetime) -> CapacitySummary:  # fmt: skip
    """The capacity summary of ``hub`` from its ``machines`` and the nominal hours of its
    queued tasks per material. A machine is idle here when it is idle, not held and its
    maker's availability window is open at ``now``; materials are those the maker accepts."""
    now = require_utc("now", now)
    lines: dict[tuple[MachineKind, str], CapacityLine] = {}
    idle_total = 0
    for machine in sorted(machines, key=lambda m: m.machine_id):
        if not working(machine):
            continue
        idle = machine.state is MachineState.IDLE and machine.policy.available(now)
        idle_total += idle
        for material in sorted(machine.matchable_materials):
            key = (machine.kind, _spelling(lines, machine.kind, material))
            line = lines.get(key)
            if line is None:
                lines[key] = CapacityLine(key[0], key[1], 1, int(idle), machine.volume_mm)
                continue
            volume = max(line.volume_mm, machine.volume_mm, key=_volume_key)
            lines[key] = CapacityLine(key[0], key[1], line.machines + 1, line.idle + idle,
                                      volume)  # fmt: skip
    ordered = tuple(sorted(lines.values(), key=lambda ln: (ln.kind.value, ln.material)))
    hours = {m: round(h, 3) for m, h in sorted(queued_hours.items()) if h > 0}
    return CapacitySummary(hub, now, idle_total, ordered, hours)


def _spelling(lines: Mapping[tuple[MachineKind, str], CapacityLine], kind: MachineKind,
              material: str) -> str:  # fmt: skip
    """The spelling already used for ``material`` (materials compare without case)."""
    for k, m in lines:
        if k is kind and same_material(m, material):
            return m
    return material


def _volume_key(volume: tuple[float, float, float]) -> tuple[float, tuple[float, ...]]:
    x, y, z = volume
    return x * y * z, tuple(sorted(volume))


def summary_json(summary: CapacitySummary) -> dict[str, Any]:
    """The summary as sent to peers (``POST /federation/v1/capacity``)."""
    return {
        "hub": summary.hub,
        "computed_at": summary.computed_at.isoformat(),
        "idle_machines": summary.idle_machines,
        "kinds": list(summary.kinds),
        "materials": list(summary.materials),
        "lines": [
            {
                "kind": ln.kind.value,
                "material": ln.material,
                "machines": ln.machines,
                "idle": ln.idle,
                "volume_mm": list(ln.volume_mm),
            }
            for ln in summary.lines
        ],  # fmt: skip
        "queued_hours": dict(summary.queued_hours),
    }


def summary_from_json(data: Mapping[str, Any]) -> CapacitySummary:
    """A summary a peer sent; InvalidInput naming the first bad field."""
    hub = _text(data.get("hub"), "hub", 64)
    computed_at = _time(data.get("computed_at"))
    idle = _count(data.get("idle_machines"), "idle_machines")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or len(raw_lines) > MAX_LINES:
        raise InvalidInput(f"lines must be a list of at most {MAX_LINES} objects")
    lines = tuple(_line(raw, i) for i, raw in enumerate(raw_lines))
    raw_hours = data.get("queued_hours")
    if not isinstance(raw_hours, dict) or len(raw_hours) > MAX_LINES:
        raise InvalidInput(f"queued_hours must be an object of at most {MAX_LINES} materials")
    hours = {_text(m, "queued_hours material", MAX_MATERIAL_CHARS):
             _number(h, f"queued_hours[{m}]", MAX_HOURS) for m, h in raw_hours.items()}  # fmt: skip
    return CapacitySummary(hub, computed_at, idle, lines, hours)


def _line(raw: Any, i: int) -> CapacityLine:
    where = f"lines[{i}]"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object")
    kinds = tuple(k.value for k in MachineKind)
    if raw.get("kind") not in kinds:
        raise InvalidInput(f"{where}.kind must be one of {', '.join(kinds)}, "
                           f"got {raw.get('kind')!r:.40}")  # fmt: skip
    material = _text(raw.get("material"), f"{where}.material", MAX_MATERIAL_CHARS)
    machines = _count(raw.get("machines"), f"{where}.machines")
    idle = _count(raw.get("idle"), f"{where}.idle")
    if idle > machines:
        raise InvalidInput(f"{where}.idle ({idle}) exceeds its machines ({machines})")
    volume = raw.get("volume_mm")
    if not isinstance(volume, list) or len(volume) != 3:
        raise InvalidInput(f"{where}.volume_mm must be three sizes in mm")
    x, y, z = (_number(v, f"{where}.volume_mm", MAX_VOLUME_MM) for v in volume)
    if not min(x, y, z) > 0:
        raise InvalidInput(f"{where}.volume_mm must be three sizes > 0, got {volume!r}")
    return CapacityLine(MachineKind(raw["kind"]), material, machines, idle, (x, y, z))


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{field} must be a non-empty string of at most {limit} "
                           f"characters, got {value!r:.80}")  # fmt: skip
    return value


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise InvalidInput(f"{field} must be an integer 0..{MAX_COUNT}, got {value!r:.40}")
    return value


def _number(value: Any, field: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit:
        raise InvalidInput(f"{field} must be a number 0..{limit:g}, got {value!r:.40}")
    return float(value)


def _time(value: Any) -> datetime:
    try:
        return require_utc("computed_at", datetime.fromisoformat(str(value)))
    except (InvalidInput, ValueError):
        raise InvalidInput(
            f"computed_at must be an ISO 8601 time with its UTC offset, got {value!r:.40}"
        ) from None
