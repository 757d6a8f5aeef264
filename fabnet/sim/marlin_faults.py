"""Faults the Marlin simulator can inject, keyed by the wire line number ``N`` they hit.

Each fault fires once (a resent line is received cleanly). ``FaultPlan.parse`` reads the CLI's
``--fault`` specs: ``corrupt:N``, ``drop-ok:N``, ``busy:N:SECONDS``, ``silent:N``, ``reset:N``,
``halt:N`` and ``runaway:N`` (thermal runaway, then halt).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fabnet.errors import InvalidInput

HALT_LINE = "Error:Printer halted. kill() called!"
RUNAWAY_LINE = "Error:Thermal Runaway, system stopped! Heater_ID: 0"


@dataclass(frozen=True)
class FaultPlan:
    """Where the simulated firmware misbehaves; every number is a wire line number ``N``.

    corrupt: the line's checksum is corrupted on receipt -> ``Error:checksum mismatch``, resend.
    drop_ok: the line executes but its ``ok`` is never sent.
    busy_s: the line keeps the firmware busy that many seconds (``echo:busy: processing``).
    silent_at: on receipt of this line the firmware stops answering for good.
    reset_at: on receipt of this line the board resets (``start`` again, numbering forgotten).
    halt_at: executing this line halts the firmware (``Error:Printer halted. kill() called!``).
    runaway_at: executing this line reports thermal runaway, then halts.
    """

    corrupt: frozenset[int] = frozenset()
    drop_ok: frozenset[int] = frozenset()
    busy_s: dict[int, float] = field(default_factory=dict)
    silent_at: int | None = None
    reset_at: int | None = None
    halt_at: int | None = None
    runaway_at: int | None = None

    @classmethod
    def parse(cls, specs: Iterable[str]) -> FaultPlan:
        """Build a plan from specs like ``corrupt:12``; raises InvalidInput naming a bad spec."""
        corrupt: set[int] = set()
        drop_ok: set[int] = set()
        busy: dict[int, float] = {}
        single: dict[str, int] = {}
        for spec in specs:
            kind, _, rest = spec.partition(":")
            parts = rest.split(":") if rest else []
            try:
                line = int(parts[0])
                if kind == "busy":
                    busy[line] = float(parts[1])
                elif len(parts) != 1:
                    raise ValueError(spec)
            except (IndexError, ValueError) as exc:
                raise InvalidInput(
                    f"fault must look like kind:N (busy:N:SECONDS), got {spec!r}"
                ) from exc
            if line < 1:
                raise InvalidInput(f"fault line number must be >= 1, got {spec!r}")
            if kind == "corrupt":
                corrupt.add(line)
            elif kind == "drop-ok":
                drop_ok.add(line)
            elif kind in ("silent", "reset", "halt", "runaway"):
                single[kind] = line
            elif kind != "busy":
                raise InvalidInput(
                    f"fault kind must be corrupt|drop-ok|busy|silent|reset|halt|runaway, got {kind!r}"
                )
        return cls(
            corrupt=frozenset(corrupt),
            drop_ok=frozenset(drop_ok),
            busy_s=busy,
            silent_at=single.get("silent"),
            reset_at=single.get("reset"),
            halt_at=single.get("halt"),
            runaway_at=single.get("runaway"),
        )
