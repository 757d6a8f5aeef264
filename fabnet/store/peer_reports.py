"""The origin hub's side of tasks handed to peer hubs (issue 12), in the database: the final
reports peers sent (each kept once, counted or not, so a late completion is on record), the
pseudo-machine ``peer:<hub>`` that holds a task while a peer makes it, and the reads the
delegator and the results inbox need.

The report table sits on the store's ``Base`` but is created here on first use (under the
schema lock), like ``fabnet.store.peers``, so a database made by an older fabnet gains it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.core.ids import PEER_PREFIX, peer_named
from fabnet.core.machines import Machine
from fabnet.core.states import LEASED_TASK_STATES, MachineKind, MachineState, TaskState
from fabnet.store.catalog import Catalog
from fabnet.store.columns import names_a_peer
from fabnet.store.database import Database
from fabnet.store.models import ID, Base, MachineRow, MakerRow, TaskRow
from fabnet.store.schema_lock import LazyTables

REPORT_ID = String(200)
PEER_NAME = String(64)
# The pseudo-machine's figures: never matched (offline), never capacity; only its id matters.
PEER_MACHINE_VOLUME_MM = (1.0, 1.0, 1.0)
PEER_MACHINE_NOZZLE_MM = 0.4
PEER_DRIVER = "peer"


class PeerReportRow(Base):
    """A final report (done, failed, released) a peer sent about a task of this hub, and what
    this hub made of it (``outcome``: applied, duplicate, stale). One row per (peer, report):
    the same report sent again is not recorded twice."""

    __tablename__ = "federation_peer_reports"
    peer: Mapped[str] = mapped_column(PEER_NAME, primary_key=True)
    report_id: Mapped[str] = mapped_column(REPORT_ID, primary_key=True)
    origin_task_id: Mapped[str] = mapped_column(ID, index=True)
    offer_no: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # wire.ReportState
    outcome: Mapped[str] = mapped_column(String(16))  # wire.ReportOutcome
    grams: Mapped[float] = mapped_column(Float)
    machine_hours: Mapped[float] = mapped_column(Float)
    charged_mc: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]
    why: Mapped[str] = mapped_column(String(500))


class PeerTransferRow(Base):
    """A task this hub handed to a peer under one offer, recorded before the request went out,
    with what came of it (``answer``: accepted, refused, unreachable, or empty while unknown).
    It is how a report about a task is known to come from a hub it was sent to."""

    __tablename__ = "federation_transfers"
    peer: Mapped[str] = mapped_column(PEER_NAME, primary_key=True)
    origin_task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    offer_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime]
    answer: Mapped[str] = mapped_column(String(500))


TABLES = (PeerReportRow.__table__, PeerTransferRow.__table__)


class PeerTransfers:
    """Transfers of tasks to peers on ``db`` (``PeerTransferRow``)."""

    def __init__(self, db: Database) -> None:
        self._tables = LazyTables(db, TABLES)

    @property
    def db(self) -> Database:
        return self._tables.database()

    def sending(self, peer: str, task_id: str, offer_no: int, now: datetime) -> None:
        """Record that offer ``offer_no`` of the task is being sent to ``peer``."""
        try:
            with self.db.write() as s:
                if s.get(PeerTransferRow, (peer, task_id, offer_no)) is None:
                    s.add(PeerTransferRow(peer=peer, origin_task_id=task_id, offer_no=offer_no,
                                          sent_at=now, answer=""))  # fmt: skip
        except IntegrityError:  # recorded by another process a moment before: the same fact
            return

    def answered(self, peer: str, task_id: str, offer_no: int, answer: str) -> None:
        with self.db.write() as s:
            row = s.get(PeerTransferRow, (peer, task_id, offer_no))
            if row is not None:
                row.answer = answer[:500]

    def list(self, peer: str | None = None) -> list[tuple[str, str, int, datetime, str]]:
        """(peer, task, offer, sent at, answer) of every transfer (of one peer), oldest first."""
        query = select(PeerTransferRow).order_by(PeerTransferRow.sent_at)
        if peer is not None:
            query = query.where(PeerTransferRow.peer == peer)
        with self.db.read() as s:
            return [(r.peer, r.origin_task_id, r.offer_no, r.sent_at, r.answer)
                    for r in s.scalars(query)]  # fmt: skip


@dataclass(frozen=True)
class PeerReport:
    """A recorded final report (see ``PeerReportRow``)."""

    peer: str
    report_id: str
    origin_task_id: str
    offer_no: int
    state: str
    outcome: str
    grams: float
    machine_hours: float
    charged_mc: int
    received_at: datetime
    why: str = ""


class PeerReports:
    """The final reports of peers on ``db``; creates its table on first use."""

    def __init__(self, db: Database) -> None:
        self._tables = LazyTables(db, TABLES)

    @property
    def db(self) -> Database:
        return self._tables.database()

    def record(self, report: PeerReport) -> bool:
        """Keep ``report``; False (the first one kept) when this peer's report id is known."""
        try:
            with self.db.write() as s:
                if s.get(PeerReportRow, (report.peer, report.report_id)) is not None:
                    return False
                s.add(PeerReportRow(**_fields(report)))
        except IntegrityError:  # the same report recorded by another process a moment before
            return False
        return True

    def list(self, peer: str | None = None, origin_task_id: str | None = None) -> list[PeerReport]:
        """Reports kept, oldest first, of one peer and/or one task."""
        query = select(PeerReportRow).order_by(PeerReportRow.received_at, PeerReportRow.report_id)
        if peer is not None:
            query = query.where(PeerReportRow.peer == peer)
        if origin_task_id is not None:
            query = query.where(PeerReportRow.origin_task_id == origin_task_id)
        with self.db.read() as s:
            return [_report(row) for row in s.scalars(query)]


def _fields(report: PeerReport) -> dict[str, object]:
    return {
        "peer": report.peer,
        "report_id": report.report_id,
        "origin_task_id": report.origin_task_id,
        "offer_no": report.offer_no,
        "state": report.state,
        "outcome": report.outcome,
        "grams": report.grams,
        "machine_hours": report.machine_hours,
        "charged_mc": report.charged_mc,
        "received_at": report.received_at,
        "why": report.why[:500],
    }


def _report(row: PeerReportRow) -> PeerReport:
    return PeerReport(row.peer, row.report_id, row.origin_task_id, row.offer_no, row.state,
                      row.outcome, row.grams, row.machine_hours, row.charged_mc, row.received_at,
                      row.why)  # fmt: skip


def ensure_peer_machine(db: Database, hub: str, now: datetime) -> str:
    """Make the maker and machine ``peer:<hub>`` that hold this hub's tasks while peer ``hub``
    makes them, if they do not exist yet (a task's holder, its attempts and its ledger entry
    name a machine row); its id. The machine is offline for good, so the matcher never offers
    it anything and it never counts as this hub's capacity."""
    if not hub:
        raise ValueError("a peer machine needs the peer hub's name, got ''")
    machine_id = PEER_PREFIX + hub
    with db.read() as s:
        if s.get(MachineRow, machine_id) is not None:
            return machine_id
    machine = Machine(machine_id, machine_id, MachineKind.FDM, PEER_MACHINE_VOLUME_MM,
                      PEER_MACHINE_NOZZLE_MM, frozenset(), state=MachineState.OFFLINE,
                      driver=PEER_DRIVER, name=f"hub {hub}")  # fmt: skip
    try:
        with db.write() as s:
            if s.get(MakerRow, machine_id) is None:
                s.add(MakerRow(id=machine_id, name=f"hub {hub}", created_at=now))
        Catalog(db).upsert_machine(machine)
    except IntegrityError:  # another process made them a moment before
        pass
    return machine_id


def peer_tasks_in_flight(db: Database) -> dict[str, int]:
    """Tasks each peer holds now (offered to it, or leased), keyed by hub name, in one read."""
    open_states = [TaskState.OFFERED.value, *(s.value for s in LEASED_TASK_STATES)]
    query = (
        select(TaskRow.machine_id, func.count())
        .where(names_a_peer(TaskRow.machine_id), TaskRow.state.in_(open_states))
        .group_by(TaskRow.machine_id)
    )
    with db.read() as s:
        return {peer_named(str(m)) or "": int(n) for m, n in s.execute(query)}


@dataclass(frozen=True)
class SentTask:
    """A task of this hub that was sent to a peer, with what bounds a peer's figures for it:
    its nominal hours, its part's size (mm) and its parts."""

    task_id: str
    estimated_hours: float
    size_mm: tuple[float, float, float]
    parts: int


def tasks_sent_to(db: Database, peer: str, task_ids: Collection[str]) -> dict[str, SentTask]:
    """Those of ``task_ids`` ever sent to ``peer`` (a transfer recorded), in one read."""
    if not task_ids:
        return {}
    transfers = PeerTransfers(db)
    sent = (
        select(PeerTransferRow.origin_task_id)
        .where(PeerTransferRow.peer == peer, PeerTransferRow.origin_task_id.in_(list(task_ids)))
        .distinct()
    )
    query = select(TaskRow).where(TaskRow.id.in_(sent.scalar_subquery()))
    with transfers.db.read() as s:
        return {
            t.id: SentTask(
                t.id, t.estimated_hours, (t.size_x_mm, t.size_y_mm, t.size_z_mm), t.parts
            )  # fmt: skip
            for t in s.scalars(query)
        }
