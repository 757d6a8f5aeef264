"""The tables: makers, machines, designs, jobs, tasks, task_attempts, task_events, ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fabnet.store.columns import UTCDateTime

ID = String(32)  # uuid4 hex
EVENT_ID = String(64)  # MQTT message ids: uuid4, hex or dashed
PEER_ID = String(130)  # makers are agent ids, machines "<agent>/<machine>" (64 + 1 + 64)
SHA256 = String(64)


class Base(DeclarativeBase):
    """Declarative base; every ``datetime`` column is a UTC timestamp."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class MakerRow(Base):
    __tablename__ = "makers"
    id: Mapped[str] = mapped_column(PEER_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class MachineRow(Base):
    __tablename__ = "machines"
    id: Mapped[str] = mapped_column(PEER_ID, primary_key=True)
    maker_id: Mapped[str] = mapped_column(ForeignKey("makers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    profile: Mapped[str] = mapped_column(String(100))
    driver: Mapped[str] = mapped_column(String(20))
    nozzle_mm: Mapped[float]
    volume_x_mm: Mapped[float]
    volume_y_mm: Mapped[float]
    volume_z_mm: Mapped[float]
    speed_factor: Mapped[float]
    materials: Mapped[list[str]]
    policy: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    last_seen: Mapped[datetime | None]
    # On hold after too many failures in a row (issue 10): not offered work until released;
    # consecutive failures are counted from ``hold_cleared_at``. Added by upgrade.py.
    held_at: Mapped[datetime | None]
    hold_reason: Mapped[str | None] = mapped_column(String(500))
    hold_cleared_at: Mapped[datetime | None]


class DesignRow(Base):
    __tablename__ = "designs"
    id: Mapped[str] = mapped_column(SHA256, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(200))
    license: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    remix_of: Mapped[str | None] = mapped_column(ForeignKey("designs.id"))
    tags: Mapped[list[str]]
    triangles: Mapped[int]
    bbox_x_mm: Mapped[float]
    bbox_y_mm: Mapped[float]
    bbox_z_mm: Mapped[float]
    volume_mm3: Mapped[float]
    watertight: Mapped[bool]
    created_at: Mapped[datetime]


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    requester: Mapped[str] = mapped_column(String(200), index=True)
    design_id: Mapped[str] = mapped_column(ForeignKey("designs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    material: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int]
    part_x_mm: Mapped[float]
    part_y_mm: Mapped[float]
    part_z_mm: Mapped[float]
    hours_per_part: Mapped[float]
    quality: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int]
    deadline: Mapped[datetime | None]
    parts_per_task: Mapped[int]
    max_attempts: Mapped[int]
    nozzle_mm: Mapped[float | None]
    created_at: Mapped[datetime]
    # How many of the job's tasks are in each state, moved in the transaction that moves a
    # task (store/job_counts.py), so reading a job never recounts its tasks. Nullable for the
    # ALTER TABLE of older databases; upgrade.py back-fills them on start.
    tasks_queued: Mapped[int | None]
    tasks_offered: Mapped[int | None]
    tasks_claimed: Mapped[int | None]
    tasks_preparing: Mapped[int | None]
    tasks_running: Mapped[int | None]
    tasks_done: Mapped[int | None]
    tasks_failed: Mapped[int | None]
    tasks_cancelled: Mapped[int | None]


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_queue", "state", "priority", "deadline", "created_at"),
        Index("ix_tasks_lease", "state", "lease_until"),
        Index("ix_tasks_offers", "state", "offer_until"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    index: Mapped[int]
    parts: Mapped[int]
    size_x_mm: Mapped[float]
    size_y_mm: Mapped[float]
    size_z_mm: Mapped[float]
    estimated_hours: Mapped[float]
    kind: Mapped[str] = mapped_column(String(8))
    material: Mapped[str] = mapped_column(String(32))
    nozzle_mm: Mapped[float | None]
    priority: Mapped[int]
    deadline: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16))
    max_attempts: Mapped[int]
    offer_no: Mapped[int]
    machine_id: Mapped[str | None] = mapped_column(ForeignKey("machines.id"), index=True)
    offer_until: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    progress: Mapped[float]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AttemptRow(Base):
    __tablename__ = "task_attempts"
    __table_args__ = (UniqueConstraint("task_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    number: Mapped[int]
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"))
    offer_no: Mapped[int]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    cause: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500))
    failure: Mapped[str | None] = mapped_column(String(24))  # FailureCause; by upgrade.py


class EventRow(Base):
    """Every event handled for a task, applied or ignored; its id makes handling idempotent."""

    __tablename__ = "task_events"
    event_id: Mapped[str] = mapped_column(EVENT_ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))  # None: ignored
    cause: Mapped[str | None] = mapped_column(String(20))
    ignored: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500))


class LedgerRow(Base):
    __tablename__ = "ledger"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), unique=True)  # done once
    job_id: Mapped[str] = mapped_column(ID, index=True)
    maker_id: Mapped[str] = mapped_column(PEER_ID, index=True)
    machine_id: Mapped[str] = mapped_column(PEER_ID)
    design_id: Mapped[str] = mapped_column(SHA256, index=True)
    material: Mapped[str] = mapped_column(String(32))
    grams: Mapped[float]
    machine_hours: Mapped[float]
    parts: Mapped[int]
    finished_at: Mapped[datetime] = mapped_column(index=True)
