"""Splitting jobs into tasks, deriving job state, and the ledger's sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fabnet.core.jobs import JobSpec, Quality, job_state, plate_size_mm, split_job
from fabnet.core.ledger import (
    LedgerEntry,
    LedgerKey,
    Totals,
    recent_hours_by_maker,
    series,
    totals,
)
from fabnet.core.states import JobState, MachineKind, TaskState
from fabnet.errors import InvalidInput

T0 = datetime(2024, 5, 1, tzinfo=UTC)
Q, R, D = TaskState.QUEUED, TaskState.RUNNING, TaskState.DONE
F, C = TaskState.FAILED, TaskState.CANCELLED


def spec(quantity: int = 12, parts_per_task: int = 1) -> JobSpec:
    return JobSpec(
        job_id="j",
        requester="r",
        design_id="d" * 64,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=quantity,
        part_size_mm=(20, 30, 10),
        hours_per_part=0.5,
        quality=Quality.FINE,
        parts_per_task=parts_per_task,
    )


def test_split_one_part_per_task() -> None:
    plans = split_job(spec())
    assert len(plans) == 12 and all(p.parts == 1 for p in plans)
    assert len({p.task_id for p in plans}) == 12
    assert plans[0].size_mm == (20, 30, 10) and plans[0].estimated_hours == 0.5
    assert Quality.FINE.layer_height_mm == 0.1 and Quality.DRAFT.layer_height_mm == 0.3


def test_split_into_plates() -> None:
    plans = split_job(spec(quantity=12, parts_per_task=5))
    assert [p.parts for p in plans] == [5, 5, 2]
    assert [p.index for p in plans] == [0, 1, 2]
    assert sum(p.estimated_hours for p in plans) == pytest.approx(6.0)
    assert (
        plans[0].size_mm == plate_size_mm((20, 30, 10), 5) == (70.0, 65.0, 10)
    )  # 3 x 2 grid, 5 mm gaps
    assert plate_size_mm((20, 30, 10), 1) == (20, 30, 10)


@pytest.mark.parametrize(
    ("field", "value"), [("quantity", 0), ("parts_per_task", 0), ("hours_per_part", -1.0)]
)
def test_bad_job_names_the_field(field: str, value: float) -> None:
    kwargs = dict(spec().__dict__)
    kwargs[field] = value
    with pytest.raises(InvalidInput, match=field):
        JobSpec(**kwargs)


def test_job_state_from_tasks() -> None:
    assert job_state([Q, Q]) is JobState.QUEUED
    assert job_state([Q, R]) is JobState.IN_PROGRESS
    assert job_state([Q, D]) is JobState.IN_PROGRESS
    assert job_state([D, D]) is JobState.DONE
    assert job_state([D, F]) is JobState.FAILED
    assert job_state([C, C]) is JobState.CANCELLED
    assert job_state([D, C]) is JobState.CANCELLED


def entry(i: int, maker: str, material: str, hours_ago: float, grams: float = 10) -> LedgerEntry:
    return LedgerEntry(
        task_id=f"t{i}",
        job_id="j",
        maker_id=maker,
        machine_id=f"{maker}-m",
        design_id="d",
        material=material,
        grams=grams,
        machine_hours=2.0,
        parts=1,
        finished_at=T0 - timedelta(hours=hours_ago),
    )


def test_totals_series_and_recent_hours() -> None:
    entries = [
        entry(1, "a", "PLA", 1),
        entry(2, "a", "PETG", 2, grams=5),
        entry(3, "b", "PLA", 30),
        entry(4, "b", "PLA", 24 * 8),  # outside the 7-day fairness window
    ]
    assert totals(entries)["all"] == Totals(tasks=4, parts=4, grams=35, machine_hours=8)
    by_material = totals(entries, LedgerKey.MATERIAL)
    assert by_material["PLA"].grams == 30 and by_material["PETG"].tasks == 1
    assert totals(entries, LedgerKey.MAKER)["b"].machine_hours == 4
    assert recent_hours_by_maker(entries, T0) == {"a": 4.0, "b": 2.0}
    points = series(entries, T0 - timedelta(days=2), T0, timedelta(days=1))
    assert [(p.start, p.key, p.totals.grams) for p in points] == [
        (T0 - timedelta(days=2), "PETG", 0),
        (T0 - timedelta(days=2), "PLA", 10),
        (T0 - timedelta(days=1), "PETG", 5),
        (T0 - timedelta(days=1), "PLA", 10),
    ]
    with pytest.raises(InvalidInput, match="bucket"):
        series(entries, T0, T0 + timedelta(days=1), timedelta(0))
