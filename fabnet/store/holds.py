"""Machines on hold (issue 10): a machine whose attempts keep failing is no longer offered
work until its maker or an operator releases it. Failures are counted from the attempts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from fabnet.core.states import AttemptCause, FailureCause
from fabnet.core.timeutil import require_utc
from fabnet.errors import Conflict, NotFound
from fabnet.store.database import Database
from fabnet.store.models import AttemptRow, MachineRow

LOOK_BACK = 200  # attempts read when counting a run of failures (the limit is at most 1000)


@dataclass(frozen=True)
class Hold:
    """Why and since when a machine is held."""

    machine_id: str
    held_at: datetime
    reason: str


class Holds:
    """Count a machine's failures in a row, hold it, release it; thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def consecutive_failures(self, machine_id: str) -> int:
        """Failures counting against the machine (``FailureCause.counts_against_machine``)
        since its last done attempt and its last release; cancels and hand-backs are skipped."""
        with self._db.read() as s:
            machine = s.get(MachineRow, machine_id)
            if machine is None:
                raise NotFound(f"machine {machine_id} not found")
            query = select(AttemptRow.cause, AttemptRow.failure).where(
                AttemptRow.machine_id == machine_id, AttemptRow.ended_at.is_not(None)
            )
            if machine.hold_cleared_at is not None:
                query = query.where(AttemptRow.ended_at > machine.hold_cleared_at)
            query = query.order_by(AttemptRow.ended_at.desc(), AttemptRow.id.desc())
            rows = list(s.execute(query.limit(LOOK_BACK)))
        count = 0
        for cause, failure in rows:
            if cause == AttemptCause.DONE.value:
                break
            if failure is not None and FailureCause(failure).counts_against_machine:
                count += 1
        return count

    def hold(self, machine_id: str, reason: str, now: datetime) -> bool:
        """Put the machine on hold; False if it already was (nothing changes)."""
        now = require_utc("now", now)
        with self._db.write() as s:
            row = s.get(MachineRow, machine_id)
            if row is None:
                raise NotFound(f"machine {machine_id} not found")
            if row.held_at is not None:
                return False
            row.held_at, row.hold_reason = now, reason[:500]
            return True

    def release(self, machine_id: str, now: datetime) -> None:
        """Take the machine off hold; its failures so far no longer count. Raises NotFound,
        and Conflict when it is not held."""
        now = require_utc("now", now)
        with self._db.write() as s:
            row = s.get(MachineRow, machine_id)
            if row is None:
                raise NotFound(f"machine {machine_id} not found")
            if row.held_at is None:
                raise Conflict(f"machine {machine_id} is not on hold")
            row.held_at, row.hold_reason, row.hold_cleared_at = None, None, now

    def get(self, machine_id: str) -> Hold | None:
        """The machine's hold, None if it is not held."""
        with self._db.read() as s:
            row = s.get(MachineRow, machine_id)
            if row is None or row.held_at is None:
                return None
            return Hold(row.id, row.held_at, row.hold_reason or "")

    def held(self, machine_ids: frozenset[str] | None = None) -> dict[str, Hold]:
        """Every held machine (of ``machine_ids`` if given), by id."""
        query = select(MachineRow).where(MachineRow.held_at.is_not(None))
        if machine_ids is not None:
            query = query.where(MachineRow.id.in_(sorted(machine_ids)))
        with self._db.read() as s:
            return {
                r.id: Hold(r.id, r.held_at, r.hold_reason or "")
                for r in s.scalars(query)
                if r.held_at is not None
            }

    def last_failures(self, machine_ids: Collection[str]) -> dict[str, FailureCause]:
        """The cause of each machine's latest attempt that ended badly (machines with none
        are left out); for the dashboard's machine lists."""
        if not machine_ids:
            return {}
        latest = (
            select(AttemptRow.machine_id, func.max(AttemptRow.ended_at).label("at"))
            .where(AttemptRow.machine_id.in_(sorted(machine_ids)), AttemptRow.failure.is_not(None))
            .group_by(AttemptRow.machine_id)
            .subquery()
        )
        query = select(AttemptRow.machine_id, AttemptRow.failure).join(
            latest,
            (AttemptRow.machine_id == latest.c.machine_id) & (AttemptRow.ended_at == latest.c.at),
        )
        with self._db.read() as s:
            return {m: FailureCause(f) for m, f in s.execute(query) if f is not None}
