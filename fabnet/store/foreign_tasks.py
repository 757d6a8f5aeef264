"""Foreign tasks in the database (issue 12): which origin task each local job was made for,
read and written without deciding anything — ``fabnet.federation.intake`` decides what a
transfer does, ``fabnet.federation.reporting`` what to tell the origin.

Writes are compare-and-set: ``insert`` fails (False) when the origin task is bound already
and ``update`` when the binding is no longer the one the caller read, so two hub processes
receiving one transfer at the same moment never both bind it; the loser reads again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError

from fabnet.store.database import Database
from fabnet.store.foreign_models import TABLES, ForeignTaskRow
from fabnet.store.models import LedgerRow
from fabnet.store.schema_lock import LazyTables


@dataclass(frozen=True)
class Binding:
    """An origin task held here as local task ``local_task_id`` (of job ``local_job_id``)."""

    origin: str
    origin_task_id: str
    origin_job_id: str
    offer_no: int
    generation: int
    local_job_id: str
    local_task_id: str
    design_id: str
    license: str
    started_sent: bool = False
    closed_at: datetime | None = None
    closed_why: str = ""

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def _binding(row: ForeignTaskRow) -> Binding:
    return Binding(row.origin, row.origin_task_id, row.origin_job_id, row.offer_no,
                   row.generation, row.local_job_id, row.local_task_id, row.design_id,
                   row.license, row.started_sent, row.closed_at, row.closed_why)  # fmt: skip


class ForeignTasks:
    """The foreign task table on ``db``; creates it on first use (a hub whose database does
    not answer yet must still start)."""

    def __init__(self, db: Database) -> None:
        self._tables = LazyTables(db, TABLES)

    @property
    def db(self) -> Database:
        return self._tables.database()

    def get(self, origin: str, origin_task_id: str) -> Binding | None:
        with self.db.read() as s:
            row = s.scalar(_where(origin, origin_task_id))
            return _binding(row) if row is not None else None

    def insert(self, binding: Binding, now: datetime) -> bool:
        """Bind a new origin task; False (nothing written) if it is bound already."""
        row = ForeignTaskRow(
            origin=binding.origin,
            origin_task_id=binding.origin_task_id,
            origin_job_id=binding.origin_job_id,
            offer_no=binding.offer_no,
            generation=binding.generation,
            local_job_id=binding.local_job_id,
            local_task_id=binding.local_task_id,
            design_id=binding.design_id,
            license=binding.license,
            started_sent=False,
            closed_at=None,
            closed_why="",
            created_at=now,
            updated_at=now,
        )
        try:
            with self.db.write() as s:
                if s.scalar(_where(binding.origin, binding.origin_task_id)) is not None:
                    return False
                s.add(row)
        except IntegrityError:  # another process bound it between our read and our insert
            return False
        return True

    def rebind(self, read: Binding, new: Binding, now: datetime) -> bool:
        """Replace the binding ``read`` (still as read: same offer and generation) by ``new``,
        open, nothing reported yet for its offer. False (nothing written) if it changed."""
        return self._swap(read, now, offer_no=new.offer_no, generation=new.generation,
                          origin_job_id=new.origin_job_id, local_job_id=new.local_job_id,
                          local_task_id=new.local_task_id, design_id=new.design_id,
                          license=new.license, started_sent=False, closed_at=None,
                          closed_why="")  # fmt: skip

    def mark_started(self, read: Binding, now: datetime) -> bool:
        """The origin acknowledged STARTED for the binding's offer."""
        return self._swap(read, now, started_sent=True)

    def close(self, read: Binding, why: str, now: datetime) -> bool:
        """Close the binding (nothing more to report); False if it was re-bound meanwhile."""
        return self._swap(read, now, closed_at=now, closed_why=why[:400])

    def _swap(self, read: Binding, now: datetime, **values: object) -> bool:
        query = (
            update(ForeignTaskRow)
            .where(
                ForeignTaskRow.origin == read.origin,
                ForeignTaskRow.origin_task_id == read.origin_task_id,
                ForeignTaskRow.offer_no == read.offer_no,
                ForeignTaskRow.generation == read.generation,
            )
            .values(updated_at=now, **values)
        )
        with self.db.write() as s:
            return bool(s.execute(query).rowcount)  # type: ignore[attr-defined]

    def open_bindings(self, origins: Iterable[str] | None = None) -> list[Binding]:
        """Open bindings, by origin hub then age (of ``origins`` only, if given)."""
        query = (
            select(ForeignTaskRow)
            .where(ForeignTaskRow.closed_at.is_(None))
            .order_by(ForeignTaskRow.origin, ForeignTaskRow.id)
        )
        if origins is not None:
            query = query.where(ForeignTaskRow.origin.in_(list(origins)))
        with self.db.read() as s:
            return [_binding(row) for row in s.scalars(query)]

    def count_open(self, origin: str) -> int:
        query = select(func.count()).where(
            ForeignTaskRow.origin == origin, ForeignTaskRow.closed_at.is_(None)
        )
        with self.db.read() as s:
            return int(s.scalar(query) or 0)

    def count(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(ForeignTaskRow)) or 0)

    def done_figures(self, task_id: str) -> tuple[float, float] | None:
        """(grams, machine hours) the ledger recorded when local task ``task_id`` was done;
        None when it has no ledger entry (not done)."""
        query = select(LedgerRow.grams, LedgerRow.machine_hours).where(LedgerRow.task_id == task_id)
        with self.db.read() as s:
            found = s.execute(query).first()
        return (float(found[0]), float(found[1])) if found is not None else None


def _where(origin: str, origin_task_id: str) -> Select[ForeignTaskRow]:
    return select(ForeignTaskRow).where(
        ForeignTaskRow.origin == origin, ForeignTaskRow.origin_task_id == origin_task_id
    )
