"""The peer hubs, accepted nonces and peers' advertised capacity kept in the database (issue
12): plain reads and writes; validation of what an operator or a peer gives lives in
``fabnet.federation``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from fabnet.core.states import LEASED_TASK_STATES, TaskState
from fabnet.errors import Conflict, NotFound
from fabnet.store.columns import names_a_peer
from fabnet.store.database import Database
from fabnet.store.models import DesignRow, JobRow, TaskRow
from fabnet.store.peer_models import TABLES, PeerCapacityRow, PeerNonceRow, PeerRow
from fabnet.store.schema_lock import LazyTables


class PeerState(enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    REMOVED = "removed"  # kept for the record (tasks will name it); refused like a stranger


@dataclass(frozen=True)
class PeerTerms:
    """What this hub shares with a peer."""

    materials: tuple[str, ...] = ()  # empty: any
    kinds: tuple[str, ...] = ("fdm", "cnc")
    max_in_flight: int = 10
    charges_credits: bool = True


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    public_key: str
    key_id: str
    terms: PeerTerms
    state: PeerState
    created_at: datetime
    updated_at: datetime
    hello_in_at: datetime | None = None
    hello_out_at: datetime | None = None

    @property
    def confirmed(self) -> bool:
        """Both sides proved they know each other: a hello each way was accepted."""
        return self.hello_in_at is not None and self.hello_out_at is not None


def _peer(row: PeerRow) -> Peer:
    terms = PeerTerms(tuple(row.materials), tuple(row.kinds), row.max_in_flight,
                      row.charges_credits)  # fmt: skip
    return Peer(row.name, row.url, row.public_key, row.key_id, terms, PeerState(row.state),
                row.created_at, row.updated_at, row.hello_in_at, row.hello_out_at)  # fmt: skip


class Peers:
    """The peer table on ``db``; creates its tables on first use."""

    def __init__(self, db: Database) -> None:
        self._tables = LazyTables(db, TABLES)

    @property
    def db(self) -> Database:
        return self._tables.database()

    def get(self, name: str) -> Peer | None:
        with self.db.read() as s:
            row = s.get(PeerRow, name)
            return _peer(row) if row is not None else None

    def list(self, *, include_removed: bool = False) -> list[Peer]:
        with self.db.read() as s:
            query = select(PeerRow).order_by(PeerRow.name)
            if not include_removed:
                query = query.where(PeerRow.state != PeerState.REMOVED.value)
            return [_peer(row) for row in s.scalars(query)]

    def add(self, name: str, url: str, public_key: str, key_id: str, terms: PeerTerms,
            now: datetime) -> Peer:  # fmt: skip
        """Add peer ``name`` (active); a removed one comes back with the new details, its
        hellos forgotten. Conflict if it exists and is not removed."""
        try:
            with self.db.write() as s:
                row = s.get(PeerRow, name)
                if row is not None and row.state != PeerState.REMOVED.value:
                    raise Conflict(f"peer {name} exists ({row.state}); remove it first")
                if row is None:
                    row = PeerRow(name=name, created_at=now)
                    s.add(row)
                row.url, row.public_key, row.key_id = url, public_key, key_id
                row.materials, row.kinds = list(terms.materials), list(terms.kinds)
                row.max_in_flight, row.charges_credits = terms.max_in_flight, terms.charges_credits
                row.state, row.updated_at = PeerState.ACTIVE.value, now
                row.hello_in_at = row.hello_out_at = None
        except IntegrityError:
            raise Conflict(f"peer {name} was added at the same moment by another call") from None
        found = self.get(name)
        assert found is not None
        return found

    def set_state(self, name: str, state: PeerState, now: datetime) -> Peer:
        """Pause, resume or remove; NotFound for an unknown (or removed) peer."""
        with self.db.write() as s:
            row = s.get(PeerRow, name)
            if row is None or row.state == PeerState.REMOVED.value:
                raise NotFound(f"no peer named {name}")
            if row.state != state.value:
                row.state, row.updated_at = state.value, now
            return _peer(row)

    def record_hello(self, name: str, now: datetime, *, inbound: bool) -> None:
        """Note that a hello was accepted from (``inbound``) or confirmed by the peer."""
        with self.db.write() as s:
            row = s.get(PeerRow, name)
            if row is None:
                raise NotFound(f"no peer named {name}")
            if inbound:
                row.hello_in_at = now
            else:
                row.hello_out_at = now

    def count(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(PeerRow)) or 0)


class PeerNonces:
    """Nonces accepted from peers, each until ``expires_at``; the table holds only those of
    the last skew window (expired ones are deleted as new ones come in)."""

    def __init__(self, db: Database) -> None:
        self._tables = LazyTables(db, TABLES)

    @property
    def db(self) -> Database:
        return self._tables.database()

    def record(self, peer: str, nonce: str, expires_at: datetime, now: datetime) -> bool:
        """Keep ``nonce`` of ``peer``; False (nothing written) when it was seen before."""
        try:
            with self.db.write() as s:
                s.execute(delete(PeerNonceRow).where(PeerNonceRow.expires_at < now))
                if s.get(PeerNonceRow, (peer, nonce)) is not None:
                    raise _Seen
                s.add(PeerNonceRow(peer=peer, nonce=nonce, expires_at=expires_at))
        except (_Seen, IntegrityError):
            return False
        return True

    def count(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(PeerNonceRow)) or 0)


class _Seen(Exception):
    """Rolls the write back: the nonce is taken."""


@dataclass(frozen=True)
class StoredCapacity:
    """A peer's latest capacity summary (its JSON as sent) and when it was made and received."""

    peer: str
    summary: dict[str, Any]
    computed_at: datetime
    received_at: datetime


class PeerCapacities:
    """The latest capacity summary of each peer: one row per peer, replaced only by a newer one
    (a summary delayed in the network never overwrites a later one)."""

    def __init__(self, db: Database) -> None:
        self._tables = LazyTables(db, TABLES)

    @property
    def db(self) -> Database:
        return self._tables.database()

    def save(self, peer: str, summary: dict[str, Any], computed_at: datetime,
             received_at: datetime) -> bool:  # fmt: skip
        """Keep ``summary`` of ``peer``; False (nothing written) if the one kept is as new."""
        try:
            with self.db.write() as s:
                row = s.get(PeerCapacityRow, peer)
                if row is None:
                    s.add(PeerCapacityRow(peer=peer, summary=summary, computed_at=computed_at,
                                          received_at=received_at))  # fmt: skip
                elif row.computed_at < computed_at:
                    row.summary, row.computed_at = summary, computed_at
                    row.received_at = received_at
                else:
                    return False
        except IntegrityError:
            return False  # another process stored this peer's first summary at the same moment
        return True

    def get(self, peer: str) -> StoredCapacity | None:
        with self.db.read() as s:
            row = s.get(PeerCapacityRow, peer)
            return _capacity(row) if row is not None else None

    def list(self) -> list[StoredCapacity]:
        with self.db.read() as s:
            query = select(PeerCapacityRow).order_by(PeerCapacityRow.peer)
            return [_capacity(row) for row in s.scalars(query)]


def _capacity(row: PeerCapacityRow) -> StoredCapacity:
    return StoredCapacity(row.peer, dict(row.summary), row.computed_at, row.received_at)


def queued_hours_by_material(db: Database) -> dict[str, float]:
    """Nominal hours of the queued tasks per material, in one GROUP BY (capacity summary)."""
    query = (
        select(TaskRow.material, func.sum(TaskRow.estimated_hours))
        .where(TaskRow.state == TaskState.QUEUED.value)
        .group_by(TaskRow.material)
    )
    with db.read() as s:
        return {material: float(hours or 0.0) for material, hours in s.execute(query)}


@dataclass(frozen=True)
class QueuedForOverflow:
    """A queued task with what the overflow rule needs beyond the matcher's view: when it was
    made (how long it has waited) and its design's license."""

    task_id: str
    kind: str
    material: str
    size_mm: tuple[float, float, float]
    hours: float
    deadline: datetime | None
    created_at: datetime
    license: str


def queued_for_overflow(db: Database, limit: int) -> list[QueuedForOverflow]:
    """Up to ``limit`` queued tasks, oldest first, with their design's license (one join).
    A task this hub makes for a peer (its job's requester is ``peer:<hub>``) is never among
    them: it is made here or not at all, so work never hops on from hub to hub nor goes back
    and forth between two hubs."""
    query = (
        select(TaskRow, DesignRow.license)
        .join(JobRow, JobRow.id == TaskRow.job_id)
        .join(DesignRow, DesignRow.id == JobRow.design_id)
        .where(TaskRow.state == TaskState.QUEUED.value)
        .where(~names_a_peer(JobRow.requester))
        .order_by(TaskRow.created_at, TaskRow.id)
        .limit(limit)
    )
    with db.read() as s:
        return [
            QueuedForOverflow(
                t.id,
                t.kind,
                t.material,
                (t.size_x_mm, t.size_y_mm, t.size_z_mm),
                t.estimated_hours,
                t.deadline,
                t.created_at,
                license,
            )  # fmt: skip
            for t, license in s.execute(query)
        ]


def remaining_hours_by_machine(db: Database) -> dict[str, float]:
    """Nominal hours still to run of the tasks each machine holds under a lease (estimated
    hours times the part not yet done): when a busy machine will be free, roughly."""
    query = select(TaskRow.machine_id, TaskRow.estimated_hours, TaskRow.progress).where(
        TaskRow.state.in_([s.value for s in LEASED_TASK_STATES])
    )
    left: dict[str, float] = {}
    with db.read() as s:
        for machine_id, hours, progress in s.execute(query):
            if machine_id is None:
                continue
            done = min(max(float(progress or 0.0), 0.0), 1.0)
            left[machine_id] = left.get(machine_id, 0.0) + float(hours) * (1.0 - done)
    return left
