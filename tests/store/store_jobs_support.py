"""A job of small PLA cubes submitted straight into a store, for the store's own tests."""

from __future__ import annotations

from datetime import UTC, datetime

from fabnet.core.jobs import JobSpec
from fabnet.core.states import MachineKind
from fabnet.store import Store

SUBMITTED_AT = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def submit(store: Store, quantity: int, job_id: str = "b" * 32) -> list[str]:
    """Queue a job of ``quantity`` tasks (0.1 h, 20 mm, PLA, FDM); its task ids."""
    spec = JobSpec(
        job_id=job_id,
        requester="req",
        design_id="ab" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=quantity,
        part_size_mm=(20.0, 20.0, 20.0),
        hours_per_part=0.1,
    )
    store.jobs.submit(spec, SUBMITTED_AT)
    return [t.task_id for t in store.tasks.find(job_id=job_id)]
