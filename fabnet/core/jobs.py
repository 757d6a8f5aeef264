"""Jobs: what a requester asked for, split into tasks; a job's state derives from its tasks."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fabnet.core.ids import new_id
from fabnet.core.states import JobState, MachineKind, TaskState
from fabnet.errors import InvalidInput

PLATE_GAP_MM = 5.0  # space between parts on one plate


class Quality(StrEnum):
    """Quality preset of a job; each maps to a layer height."""

    DRAFT = "draft"
    NORMAL = "normal"
    FINE = "fine"

    @property
    def layer_height_mm(self) -> float:
        """Layer height in mm for this preset."""
        return LAYER_HEIGHT_MM[self]


LAYER_HEIGHT_MM = {Quality.DRAFT: 0.3, Quality.NORMAL: 0.2, Quality.FINE: 0.1}


@dataclass(frozen=True)
class JobSpec:
    """A requester's order: ``quantity`` parts of ``design_id`` in ``material``.

    ``part_size_mm`` is the part's bounding box (from the design), ``hours_per_part`` the
    nominal print/cut time of one part (speed factor 1). ``parts_per_task`` > 1 puts that
    many parts on one plate. Higher ``priority`` is served first.
    """

    job_id: str
    requester: str
    design_id: str
    kind: MachineKind
    material: str
    quantity: int
    part_size_mm: tuple[float, float, float]
    hours_per_part: float
    quality: Quality = Quality.NORMAL
    priority: int = 0
    deadline: datetime | None = None
    parts_per_task: int = 1
    max_attempts: int = 3
    nozzle_mm: float | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise InvalidInput(f"quantity must be >= 1, got {self.quantity}")
        if self.parts_per_task < 1:
            raise InvalidInput(f"parts_per_task must be >= 1, got {self.parts_per_task}")
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.hours_per_part < 0:
            raise InvalidInput(f"hours_per_part must be >= 0, got {self.hours_per_part}")
        if len(self.part_size_mm) != 3 or any(not v > 0 for v in self.part_size_mm):
            raise InvalidInput(f"part_size_mm must be three sizes > 0, got {self.part_size_mm!r}")
        if not self.material:
            raise InvalidInput("material must not be empty")


@dataclass(frozen=True)
class TaskPlan:
    """One task of a job as split: ``index`` from 0, ``parts`` on its plate, plate size (mm)."""

    task_id: str
    job_id: str
    index: int
    parts: int
    size_mm: tuple[float, float, float]
    estimated_hours: float


def plate_size_mm(
    part_mm: tuple[float, float, float], parts: int, gap_mm: float = PLATE_GAP_MM
) -> tuple[float, float, float]:
    """Bounding box of ``parts`` copies laid out in a near-square grid, ``gap_mm`` apart."""
    cols = math.ceil(math.sqrt(parts))
    rows = math.ceil(parts / cols)
    x, y, z = part_mm
    return (cols * x + (cols - 1) * gap_mm, rows * y + (rows - 1) * gap_mm, z)


def split_job(job: JobSpec) -> list[TaskPlan]:
    """Split ``job`` into tasks of ``parts_per_task`` parts each (the last may hold fewer)."""
    plans: list[TaskPlan] = []
    left = job.quantity
    index = 0
    while left > 0:
        parts = min(job.parts_per_task, left)
        plans.append(
            TaskPlan(
                task_id=new_id(),
                job_id=job.job_id,
                index=index,
                parts=parts,
                size_mm=plate_size_mm(job.part_size_mm, parts),
                estimated_hours=job.hours_per_part * parts,
            )
        )
        left -= parts
        index += 1
    return plans


def job_state(task_states: Iterable[TaskState]) -> JobState:
    """A job's state from its tasks' states.

    All final: all done → done, any failed → failed, else cancelled. Otherwise queued while
    nothing has started or finished, in progress after that. No tasks → queued.
    """
    states = list(task_states)
    if all(s.is_final for s in states) and states:
        if all(s is TaskState.DONE for s in states):
            return JobState.DONE
        if any(s is TaskState.FAILED for s in states):
            return JobState.FAILED
        return JobState.CANCELLED
    if all(s in (TaskState.QUEUED, TaskState.OFFERED) for s in states):
        return JobState.QUEUED
    return JobState.IN_PROGRESS
