"""Work exchanged with peer hubs as this hub's own tables show it (issue 12), for the dashboard:
tasks sent out (held by pseudo-machine ``peer:<hub>``), foreign tasks made here (jobs of
requester ``peer:<hub>``), how many are in flight each way, and the production each counts.

Read from the tasks, jobs and ledger tables only, by machine id and requester prefix, so it
works whatever the federation modules keep besides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from fabnet.core.ids import peer_named
from fabnet.core.ledger import Totals
from fabnet.core.states import FINAL_TASK_STATES, TaskState
from fabnet.store.columns import names_a_peer
from fabnet.store.database import Database
from fabnet.store.models import JobRow, LedgerRow, TaskRow

MAX_LISTED = 500


@dataclass(frozen=True)
class PeerTask:
    """A task of the exchange: ``hub`` is the peer that makes it (sent out) or the origin it
    is made for (foreign); ``machine_id`` is the holder here (``peer:<hub>`` when sent)."""

    task_id: str
    job_id: str
    hub: str
    state: TaskState
    progress: float
    material: str
    machine_id: str | None
    updated_at: datetime


@dataclass(frozen=True)
class InFlight:
    """Tasks not final: held by the peer (``sent``), made here for it (``received``)."""

    sent: int = 0
    received: int = 0


def _hub(value: str | None) -> str:
    return peer_named(value) or ""


def _peer_held() -> Any:
    return names_a_peer(TaskRow.machine_id)


def _for_peer() -> Any:
    return names_a_peer(JobRow.requester)


_OPEN = [s.value for s in TaskState if s not in FINAL_TASK_STATES]


class PeerWork:
    """Bounded reads of the work exchanged with peers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def sent(self, limit: int = MAX_LISTED) -> list[PeerTask]:
        """Tasks held (now, or last, if done) by a peer hub, newest change first."""
        query = (
            select(TaskRow)
            .where(_peer_held())
            .order_by(TaskRow.updated_at.desc(), TaskRow.id)
            .limit(min(limit, MAX_LISTED))
        )
        return self._db.reading(lambda s: [_task(t, _hub(t.machine_id)) for t in s.scalars(query)])

    def foreign(self, limit: int = MAX_LISTED) -> list[PeerTask]:
        """Tasks of jobs peer hubs asked this hub for, newest change first."""
        query = (
            select(TaskRow, JobRow.requester)
            .join(JobRow, JobRow.id == TaskRow.job_id)
            .where(_for_peer())
            .order_by(TaskRow.updated_at.desc(), TaskRow.id)
            .limit(min(limit, MAX_LISTED))
        )
        return self._db.reading(lambda s: [_task(t, _hub(r)) for t, r in s.execute(query)])

    def in_flight(self) -> dict[str, InFlight]:
        """Hub -> tasks not final each way, in two GROUP BY reads."""
        sent = (
            select(TaskRow.machine_id, func.count())
            .where(_peer_held(), TaskRow.state.in_(_OPEN))
            .group_by(TaskRow.machine_id)
        )
        received = (
            select(JobRow.requester, func.count())
            .join(TaskRow, TaskRow.job_id == JobRow.id)
            .where(_for_peer(), TaskRow.state.in_(_OPEN))
            .group_by(JobRow.requester)
        )

        def read(s: Session) -> dict[str, InFlight]:
            out: dict[str, InFlight] = {}
            for machine, n in s.execute(sent):
                out[_hub(machine)] = InFlight(sent=int(n))
            for requester, n in s.execute(received):
                hub = _hub(requester)
                out[hub] = InFlight(out.get(hub, InFlight()).sent, int(n))
            return out

        return self._db.reading(read)

    def made_at_peers(self) -> dict[str, Totals]:
        """Hub -> production it made for this hub (ledger entries of ``peer:<hub>``)."""
        held = names_a_peer(LedgerRow.machine_id)
        return self._totals(_sums(LedgerRow.machine_id).where(held).group_by(LedgerRow.machine_id))

    def made_for_peers(self) -> dict[str, Totals]:
        """Hub -> production this hub's makers made for it (its jobs' ledger entries)."""
        query = _sums(JobRow.requester).join(JobRow, JobRow.id == LedgerRow.job_id)
        return self._totals(query.where(_for_peer()).group_by(JobRow.requester))

    def _totals(self, query: Select[Any]) -> dict[str, Totals]:
        def read(s: Session) -> dict[str, Totals]:
            return {
                _hub(k): Totals(int(n), int(parts), float(grams), float(hours))
                for k, n, parts, grams, hours in s.execute(query)
            }

        return self._db.reading(read)


def _sums(key: Any) -> Select[Any]:
    """Ledger sums per ``key``: entries, parts, grams, machine hours."""
    return select(
        key,
        func.count(),
        func.coalesce(func.sum(LedgerRow.parts), 0),
        func.coalesce(func.sum(LedgerRow.grams), 0.0),
        func.coalesce(func.sum(LedgerRow.machine_hours), 0.0),
    ).select_from(LedgerRow)


def _task(t: TaskRow, hub: str) -> PeerTask:
    return PeerTask(t.id, t.job_id, hub, TaskState(t.state), t.progress, t.material,
                    t.machine_id, t.updated_at)  # fmt: skip
