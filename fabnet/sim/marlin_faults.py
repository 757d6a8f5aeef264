"""Faults the Marlin simulator can inject, keyed by the wire line number ``N`` they hit.

Each fault fires once (a resent line is received cleanly). ``FaultPlan.parse`` reads the CLI's
``--fault`` specs: ``corrupt:N``, ``lose:N``, ``nochecksum:N``, ``noline:N``, ``drop-ok:N``,
``busy:N:SECONDS``, ``silent:N``, ``reset:N``, ``halt:N``, ``heateroff:N`` (the hotend stops
heating, unnoticed by the firmware) and the thermal faults ``runaway:N``, ``mintemp:N``,
``maxtemp:N``, ``heatfail:N`` (the fault's line, then halt).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fabnet.errors import InvalidInput
from fabnet.sim.marlin_dialects import FAULT_LINES, HALT_LINE

RUNAWAY_LINE = FAULT_LINES["runaway"]
__all__ = ["HALT_LINE", "RUNAWAY_LINE", "FaultPlan"]

_SETS = {"corrupt", "lose", "nochecksum", "noline", "drop-ok"}
_SINGLE = {"silent", "reset", "halt", "heateroff"}
KINDS = "|".join([*sorted(_SETS), "busy", *sorted(_SINGLE), *FAULT_LINES])


@dataclass(frozen=True)
class FaultPlan:
    """Where the simulated firmware misbehaves; every number is a wire line number ``N``.

    corrupt: the line's checksum is corrupted on receipt -> the dialect's checksum error, resend.
    lose: the line never arrives; the next one gets the dialect's line-number error, resend.
    no_checksum: the line arrives without its ``*checksum`` -> "no checksum" error, resend.
    no_line_number: the line arrives without its ``N`` -> "no line number" error, resend.
    drop_ok: the line executes but its ``ok`` is never sent.
    busy_s: the line keeps the firmware busy that many seconds (``echo:busy: processing``).
    silent_at: on receipt of this line the firmware stops answering for good.
    reset_at: on receipt of this line the board resets (``start`` again, numbering forgotten).
    halt_at: executing this line halts the firmware (``Error:Printer halted. kill() called!``).
    heater_off_at: executing this line breaks the hotend heater: it cools toward ambient while
    its target stays set, and the firmware says nothing (only the host's watch can tell).
    thermal: N -> runaway|mintemp|maxtemp|heatfail: executing N reports that fault, then halts.
    """

    corrupt: frozenset[int] = frozenset()
    lose: frozenset[int] = frozenset()
    no_checksum: frozenset[int] = frozenset()
    no_line_number: frozenset[int] = frozenset()
    drop_ok: frozenset[int] = frozenset()
    busy_s: dict[int, float] = field(default_factory=dict)
    silent_at: int | None = None
    reset_at: int | None = None
    halt_at: int | None = None
    heater_off_at: int | None = None
    thermal: dict[int, str] = field(default_factory=dict)

    @property
    def runaway_at(self) -> int | None:
        return next((n for n, kind in self.thermal.items() if kind == "runaway"), None)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> FaultPlan:
        """Build a plan from specs like ``corrupt:12``; raises InvalidInput naming a bad spec."""
        sets: dict[str, set[int]] = {kind: set() for kind in _SETS}
        busy: dict[int, float] = {}
        single: dict[str, int] = {}
        thermal: dict[int, str] = {}
        for spec in specs:
            kind, line, seconds = _split(spec)
            if kind in sets:
                sets[kind].add(line)
            elif kind == "busy":
                busy[line] = seconds
            elif kind in _SINGLE:
                single[kind] = line
            elif kind in FAULT_LINES:
                thermal[line] = kind
            else:
                raise InvalidInput(f"fault kind must be {KINDS}, got {kind!r}")
        return cls(
            corrupt=frozenset(sets["corrupt"]),
            lose=frozenset(sets["lose"]),
            no_checksum=frozenset(sets["nochecksum"]),
            no_line_number=frozenset(sets["noline"]),
            drop_ok=frozenset(sets["drop-ok"]),
            busy_s=busy,
            silent_at=single.get("silent"),
            reset_at=single.get("reset"),
            halt_at=single.get("halt"),
            heater_off_at=single.get("heateroff"),
            thermal=thermal,
        )


def _split(spec: str) -> tuple[str, int, float]:
    """``kind:N`` or ``busy:N:SECONDS`` -> (kind, N, seconds); raises InvalidInput."""
    kind, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []
    try:
        line = int(parts[0])
        seconds = float(parts[1]) if kind == "busy" else 0.0
        if len(parts) != (2 if kind == "busy" else 1):
            raise ValueError(spec)
    except (IndexError, ValueError) as exc:
        raise InvalidInput(f"fault must look like kind:N (busy:N:SECONDS), got {spec!r}") from exc
    if line < 1:
        raise InvalidInput(f"fault line number must be >= 1, got {spec!r}")
    return kind, line, seconds
