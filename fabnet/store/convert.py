"""Between rows and the core's values: machines, policies, designs, jobs, tasks, ledger."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fabnet.core.cron import CronExpr
from fabnet.core.designs import Design
from fabnet.core.jobs import JobSpec, Quality
from fabnet.core.ledger import LedgerEntry
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.matching import TaskRequest
from fabnet.core.states import AttemptCause, FailureCause, MachineKind, MachineState, TaskState
from fabnet.core.tasks import Attempt, TaskSnapshot
from fabnet.errors import InvalidInput
from fabnet.store.models import (
    AttemptRow,
    DesignRow,
    JobRow,
    LedgerRow,
    MachineRow,
    TaskRow,
)


def tz_name(tz: tzinfo) -> str:
    """The IANA name of ``tz`` (``UTC`` for UTC); raises ``InvalidInput`` for other zones."""
    if tz is UTC:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        return tz.key
    raise InvalidInput(f"policy tz must be UTC or a zoneinfo.ZoneInfo, got {tz!r}")


def tz_from_name(name: str) -> tzinfo:
    """The time zone named ``name``; raises ``InvalidInput`` if unknown."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}") from exc


def policy_to_json(policy: MachinePolicy) -> dict[str, Any]:
    return {
        "materials_accepted": sorted(policy.materials_accepted),
        "max_task_hours": policy.max_task_hours,
        "auto_accept": policy.auto_accept,
        "windows": [w.text for w in policy.windows],
        "tz": tz_name(policy.tz),
    }


def policy_from_json(data: dict[str, Any]) -> MachinePolicy:
    return MachinePolicy(
        materials_accepted=frozenset(data.get("materials_accepted", ())),
        max_task_hours=data.get("max_task_hours"),
        auto_accept=bool(data.get("auto_accept", True)),
        windows=tuple(CronExpr.parse(w) for w in data.get("windows", ())),
        tz=tz_from_name(data.get("tz", "UTC")),
    )


def machine_fields(m: Machine) -> dict[str, Any]:
    """Column values of a machine row (all but ``id``)."""
    return {
        "maker_id": m.maker_id,
        "name": m.name,
        "kind": m.kind.value,
        "profile": m.profile,
        "driver": m.driver,
        "nozzle_mm": m.nozzle_mm,
        "volume_x_mm": m.volume_mm[0],
        "volume_y_mm": m.volume_mm[1],
        "volume_z_mm": m.volume_mm[2],
        "speed_factor": m.speed_factor,
        "materials": sorted(m.materials),
        "policy": policy_to_json(m.policy),
        "state": m.state.value,
        "last_seen": m.last_seen,
    }


def machine_from_row(r: MachineRow) -> Machine:
    return Machine(
        machine_id=r.id,
        maker_id=r.maker_id,
        kind=MachineKind(r.kind),
        volume_mm=(r.volume_x_mm, r.volume_y_mm, r.volume_z_mm),
        nozzle_mm=r.nozzle_mm,
        materials=frozenset(r.materials),
        policy=policy_from_json(r.policy),
        state=MachineState(r.state),
        speed_factor=r.speed_factor,
        profile=r.profile,
        driver=r.driver,
        name=r.name,
        last_seen=r.last_seen,
        held=r.held_at is not None,
    )


def design_to_row(d: Design, now: datetime) -> DesignRow:
    return DesignRow(
        id=d.design_id,
        name=d.name,
        author=d.author,
        license=d.license,
        version=d.version,
        remix_of=d.remix_of,
        tags=list(d.tags),
        triangles=d.triangles,
        bbox_x_mm=d.bbox_mm[0],
        bbox_y_mm=d.bbox_mm[1],
        bbox_z_mm=d.bbox_mm[2],
        volume_mm3=d.volume_mm3,
        watertight=d.watertight,
        created_at=now,
    )


def design_from_row(r: DesignRow) -> Design:
    return Design(
        design_id=r.id,
        name=r.name,
        bbox_mm=(r.bbox_x_mm, r.bbox_y_mm, r.bbox_z_mm),
        author=r.author,
        license=r.license,
        version=r.version,
        remix_of=r.remix_of,
        tags=tuple(r.tags),
        triangles=r.triangles,
        volume_mm3=r.volume_mm3,
        watertight=r.watertight,
    )


def job_to_row(j: JobSpec, now: datetime) -> JobRow:
    x, y, z = j.part_size_mm
    return JobRow(
        id=j.job_id,
        requester=j.requester,
        design_id=j.design_id,
        kind=j.kind.value,
        material=j.material,
        quantity=j.quantity,
        part_x_mm=x,
        part_y_mm=y,
        part_z_mm=z,
        hours_per_part=j.hours_per_part,
        quality=j.quality.value,
        priority=j.priority,
        deadline=j.deadline,
        parts_per_task=j.parts_per_task,
        max_attempts=j.max_attempts,
        nozzle_mm=j.nozzle_mm,
        created_at=j.created_at or now,
    )


def job_from_row(r: JobRow) -> JobSpec:
    return JobSpec(
        job_id=r.id,
        requester=r.requester,
        design_id=r.design_id,
        kind=MachineKind(r.kind),
        material=r.material,
        quantity=r.quantity,
        part_size_mm=(r.part_x_mm, r.part_y_mm, r.part_z_mm),
        hours_per_part=r.hours_per_part,
        quality=Quality(r.quality),
        priority=r.priority,
        deadline=r.deadline,
        parts_per_task=r.parts_per_task,
        max_attempts=r.max_attempts,
        nozzle_mm=r.nozzle_mm,
        created_at=r.created_at,
    )


def attempt_from_row(r: AttemptRow) -> Attempt:
    return Attempt(
        number=r.number,
        machine_id=r.machine_id,
        offer_no=r.offer_no,
        started_at=r.started_at,
        ended_at=r.ended_at,
        cause=AttemptCause(r.cause) if r.cause else None,
        detail=r.detail,
        failure=FailureCause(r.failure) if r.failure else None,
    )


def snapshot_from_row(
    r: TaskRow, attempts: list[AttemptRow], applied: frozenset[str] = frozenset()
) -> TaskSnapshot:
    return TaskSnapshot(
        task_id=r.id,
        job_id=r.job_id,
        state=TaskState(r.state),
        max_attempts=r.max_attempts,
        offer_no=r.offer_no,
        machine_id=r.machine_id,
        offer_until=r.offer_until,
        lease_until=r.lease_until,
        progress=r.progress,
        attempts=tuple(attempt_from_row(a) for a in sorted(attempts, key=lambda a: a.number)),
        applied_event_ids=applied,
        updated_at=r.updated_at,
    )


def write_snapshot(r: TaskRow, t: TaskSnapshot) -> None:
    """Copy the state machine's fields of ``t`` onto the row."""
    r.state = t.state.value
    r.offer_no = t.offer_no
    r.machine_id = t.machine_id
    r.offer_until = t.offer_until
    r.lease_until = t.lease_until
    r.progress = t.progress
    if t.updated_at is not None:
        r.updated_at = t.updated_at


def request_from_row(r: TaskRow, avoid: frozenset[str]) -> TaskRequest:
    return TaskRequest(
        task_id=r.id,
        kind=MachineKind(r.kind),
        material=r.material,
        size_mm=(r.size_x_mm, r.size_y_mm, r.size_z_mm),
        estimated_hours=r.estimated_hours,
        nozzle_mm=r.nozzle_mm,
        priority=r.priority,
        deadline=r.deadline,
        created_at=r.created_at,
        avoid_machines=avoid,
    )


def ledger_from_row(r: LedgerRow) -> LedgerEntry:
    return LedgerEntry(
        task_id=r.task_id,
        job_id=r.job_id,
        maker_id=r.maker_id,
        machine_id=r.machine_id,
        design_id=r.design_id,
        material=r.material,
        grams=r.grams,
        machine_hours=r.machine_hours,
        parts=r.parts,
        finished_at=r.finished_at,
    )
