"""The capacity summary a hub advertises (pure): which machines count, idle counting, the
largest volume per (kind, material), queued hours, the wire form and its checks, freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fabnet.core.cron import CronExpr
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState
from fabnet.errors import InvalidInput
from fabnet.federation.capacity import (
    CapacityLine,
    summarize,
    summary_from_json,
    summary_json,
)

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 UTC
FDM, CNC = MachineKind.FDM, MachineKind.CNC


def machine(mid: str, kind: MachineKind = FDM, volume: tuple[float, float, float] = (200, 200, 200),
            materials: tuple[str, ...] = ("PLA",), state: MachineState = MachineState.IDLE,
            policy: MachinePolicy | None = None, held: bool = False) -> Machine:  # fmt: skip
    return Machine(mid, "maker-1", kind, volume, 0.4, frozenset(materials),
                   policy or MachinePolicy(), state, held=held)  # fmt: skip


def test_summary_counts_working_machines_and_the_largest_volume() -> None:
    nights = MachinePolicy(windows=(CronExpr.parse("* 0-5 * * *"),))  # closed at 10:00
    machines = [
        machine("a", materials=("PLA", "PETG")),
        machine("b", volume=(300, 300, 400), state=MachineState.BUSY),
        machine("c", volume=(500, 500, 500), state=MachineState.OFFLINE),  # not counted
        machine("d", volume=(600, 600, 600), held=True),  # on hold: not counted
        machine("e", volume=(250, 250, 150), materials=("pla",)),  # same material, smaller
        machine("f", CNC, (800, 600, 100), ("Aluminium",), policy=nights),  # idle, window shut
        machine("g", materials=("PLA", "TPU"), policy=MachinePolicy(frozenset({"PLA"}))),
    ]
    summary = summarize("beta", machines, {"PLA": 3.25, "PETG": 0.0, "ABS": 1.0}, NOW)
    assert summary.lines == (
        CapacityLine(CNC, "Aluminium", 1, 0, (800, 600, 100)),
        CapacityLine(FDM, "PETG", 1, 1, (200, 200, 200)),
        CapacityLine(FDM, "PLA", 4, 3, (300, 300, 400)),
    )
    assert summary.idle_machines == 3  # a, e, g: each once though a has two materials
    assert summary.kinds == ("cnc", "fdm")
    assert summary.materials == ("Aluminium", "PETG", "PLA")
    assert dict(summary.queued_hours) == {"ABS": 1.0, "PLA": 3.25}
    assert summary.computed_at == NOW and summary.hub == "beta"


def test_a_hub_without_machines_advertises_nothing_idle() -> None:
    summary = summarize("beta", [], {}, NOW)
    assert (summary.lines, summary.idle_machines, dict(summary.queued_hours)) == ((), 0, {})


def test_the_wire_form_round_trips_and_freshness_is_by_age() -> None:
    summary = summarize("beta", [machine("a"), machine("f", CNC, (800, 600, 100), ("MDF",))],
                        {"PLA": 2.0}, NOW)  # fmt: skip
    assert summary_from_json(summary_json(summary)) == summary
    age = timedelta(minutes=10)
    assert summary.fresh(NOW + age, age) and not summary.fresh(
        NOW + age + timedelta(seconds=1), age
    )


GOOD: dict[str, Any] = summary_json(summarize("beta", [machine("a")], {"PLA": 1.0}, NOW))
LINE = GOOD["lines"][0]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"hub": ""}, "hub must be a non-empty string"),
        ({"computed_at": "yesterday"}, "computed_at must be an ISO 8601 time"),
        ({"computed_at": "2026-03-04T10:00:00"}, "computed_at must be an ISO 8601 time"),
        ({"idle_machines": -1}, "idle_machines must be an integer"),
        ({"idle_machines": True}, "idle_machines must be an integer"),
        ({"lines": "many"}, "lines must be a list"),
        ({"lines": [LINE] * 501}, "lines must be a list of at most 500"),
        ({"lines": [5]}, "lines[0] must be an object"),
        ({"lines": [{**LINE, "kind": "laser"}]}, "lines[0].kind must be one of fdm, cnc"),
        ({"lines": [{**LINE, "material": "x" * 33}]}, "lines[0].material must be"),
        ({"lines": [{**LINE, "idle": 2}]}, "lines[0].idle (2) exceeds its machines (1)"),
        ({"lines": [{**LINE, "volume_mm": [1, 2]}]}, "lines[0].volume_mm must be three"),
        ({"lines": [{**LINE, "volume_mm": [1, 2, 0]}]}, "lines[0].volume_mm must be three sizes > 0"),
        ({"lines": [{**LINE, "volume_mm": [1, 2, "z"]}]}, "lines[0].volume_mm must be a number"),
        ({"queued_hours": []}, "queued_hours must be an object"),
        ({"queued_hours": {"PLA": -3}}, "queued_hours[PLA] must be a number"),
    ],
)  # fmt: skip
def test_a_bad_summary_is_refused_naming_the_field(change: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        summary_from_json({**GOOD, **change})
    assert words in str(err.value)


def test_summarize_wants_an_aware_time() -> None:
    with pytest.raises(InvalidInput, match="now must be a timezone-aware"):
        summarize("beta", [], {}, NOW.replace(tzinfo=None))
