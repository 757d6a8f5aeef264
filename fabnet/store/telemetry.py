"""The temperatures a task's machine reported while it ran: a bounded history per task, for the
dashboard's chart (``task_telemetry``). Kept in the database so every hub sharing it sees the
whole history, whichever hub's shared subscription received a sample."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CursorResult, Index, delete, insert, literal, select
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.core.timeutil import require_utc
from fabnet.store.database import Database
from fabnet.store.models import ID, PEER_ID, Base, TaskRow

KEEP_SAMPLES = 600  # per task: 20 min at the agents' 2 s, then the newest 600
PRUNE_EVERY = 60  # samples of one task between two trims (the table may hold KEEP + this)
TRACKED_TASKS = 10_000


class TelemetryRow(Base):
    __tablename__ = "task_telemetry"
    __table_args__ = (Index("ix_task_telemetry_task", "task_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ID)
    machine_id: Mapped[str] = mapped_column(PEER_ID)
    at: Mapped[datetime]
    hotend_c: Mapped[float | None]
    hotend_target_c: Mapped[float | None]
    bed_c: Mapped[float | None]
    bed_target_c: Mapped[float | None]


@dataclass(frozen=True)
class TemperatureSample:
    """One reading (°C) at ``at`` (UTC); None where the machine has no such heater."""

    at: datetime
    hotend_c: float | None = None
    hotend_target_c: float | None = None
    bed_c: float | None = None
    bed_target_c: float | None = None


class TelemetryLog:
    """Records samples of running tasks and reads a task's history back, oldest first."""

    def __init__(self, db: Database, keep: int = KEEP_SAMPLES) -> None:
        self._db = db
        self._keep = keep
        self._since_trim: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, task_id: str, machine_id: str, sample: TemperatureSample) -> bool:
        """Store ``sample`` if ``task_id`` is now held by ``machine_id`` (a machine cannot write
        into another's task); True if stored. Every ``PRUNE_EVERY`` samples of a task its
        history is trimmed to the newest ``keep``."""
        require_utc("at", sample.at)
        values = select(
            literal(task_id),
            literal(machine_id),
            literal(sample.at, TelemetryRow.at.type),
            literal(sample.hotend_c, TelemetryRow.hotend_c.type),
            literal(sample.hotend_target_c, TelemetryRow.hotend_target_c.type),
            literal(sample.bed_c, TelemetryRow.bed_c.type),
            literal(sample.bed_target_c, TelemetryRow.bed_target_c.type),
        ).where(TaskRow.id == task_id, TaskRow.machine_id == machine_id)
        columns = ["task_id", "machine_id", "at", "hotend_c", "hotend_target_c", "bed_c"]
        stmt = insert(TelemetryRow).from_select([*columns, "bed_target_c"], values)
        with self._db.write() as session:
            result = session.execute(stmt)
            stored = isinstance(result, CursorResult) and result.rowcount > 0
        if stored and self._due(task_id):
            self._trim(task_id)
        return stored

    def _due(self, task_id: str) -> bool:
        with self._lock:
            count = self._since_trim.get(task_id, 0) + 1
            self._since_trim[task_id] = count % PRUNE_EVERY
            if len(self._since_trim) > TRACKED_TASKS:  # mostly tasks that ended: start over
                self._since_trim = {task_id: self._since_trim[task_id]}
            return count >= PRUNE_EVERY

    def _trim(self, task_id: str) -> None:
        newest = (
            select(TelemetryRow.id)
            .where(TelemetryRow.task_id == task_id)
            .order_by(TelemetryRow.id.desc())
            .offset(self._keep - 1)
            .limit(1)
            .scalar_subquery()
        )
        with self._db.write() as session:
            session.execute(
                delete(TelemetryRow).where(
                    TelemetryRow.task_id == task_id, TelemetryRow.id < newest
                )
            )

    def history(self, task_id: str) -> list[TemperatureSample]:
        """The newest ``keep`` samples of ``task_id``, oldest first."""
        query = (
            select(TelemetryRow)
            .where(TelemetryRow.task_id == task_id)
            .order_by(TelemetryRow.id.desc())
            .limit(self._keep)
        )
        with self._db.read() as session:
            rows = session.scalars(query).all()
            return [
                TemperatureSample(r.at, r.hotend_c, r.hotend_target_c, r.bed_c, r.bed_target_c)
                for r in reversed(rows)
            ]
