"""What every hub process must agree on about task G-code, kept in the database: the production
cache (which file a design/profile/material/quality/parts/slicer produced), the per-(task, offer)
assignments, and the shared secret that signs one-task tokens.

The tables are this module's own (on the store's ``Base``); ``ArtifactRecords`` creates them
itself, so a database made by an older fabnet gains them on first use. Inserts of a row another
process may insert at the same moment (the same cache key, the secret) keep whichever came
first: every process then reads the same row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.store.database import Database
from fabnet.store.models import ID, SHA256, Base
from fabnet.store.schema_lock import schema_lock

CACHE_KEY = String(64)
SECRET_NAME = String(64)


class ProducedRow(Base):
    """One produced G-code file, by production key (sha256 of what it was produced from)."""

    __tablename__ = "artifact_produced"
    key: Mapped[str] = mapped_column(CACHE_KEY, primary_key=True)
    sha256: Mapped[str] = mapped_column(SHA256)
    size_bytes: Mapped[int] = mapped_column(Integer)
    grams: Mapped[float] = mapped_column(Float)
    time_s: Mapped[float] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime]


class AssignmentRow(Base):
    """The file assigned to one (task, offer)."""

    __tablename__ = "artifact_assignments"
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    offer_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(SHA256)
    size_bytes: Mapped[int] = mapped_column(Integer)
    grams: Mapped[float | None] = mapped_column(Float)
    time_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]


class HubSecretRow(Base):
    """A secret every hub process shares (hex), generated once by whichever asked first."""

    __tablename__ = "hub_secrets"
    name: Mapped[str] = mapped_column(SECRET_NAME, primary_key=True)
    value_hex: Mapped[str] = mapped_column(String(256))


TABLES = (ProducedRow.__table__, AssignmentRow.__table__, HubSecretRow.__table__)


@dataclass(frozen=True)
class Produced:
    """A cache entry: the file's sha256 and size (bytes), its analysed grams and seconds."""

    key: str
    sha256: str
    size_bytes: int
    grams: float
    time_s: float
    summary: str


@dataclass(frozen=True)
class AssignedFile:
    """What (task, offer) was assigned: sha256, size (bytes), grams and seconds (None in
    records adopted from before they were kept)."""

    sha256: str
    size_bytes: int
    grams: float | None
    time_s: float | None


class ArtifactRecords:
    """Cache keys, assignments and shared secrets on ``db``. Thread- and process-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with schema_lock(db.engine):  # hub processes starting together on PostgreSQL
            for table in TABLES:
                table.create(db.engine, checkfirst=True)  # type: ignore[attr-defined]

    def produced(self, key: str) -> Produced | None:
        with self.db.read() as s:
            row = s.get(ProducedRow, key)
            if row is None:
                return None
            return Produced(row.key, row.sha256, row.size_bytes, row.grams, row.time_s, row.summary)

    def add_produced(self, made: Produced, now: datetime) -> Produced:
        """Record ``made`` under its key; if another process recorded that key first, its
        record stands and is returned."""
        row = ProducedRow(
            key=made.key,
            sha256=made.sha256,
            size_bytes=made.size_bytes,
            grams=made.grams,
            time_s=made.time_s,
            summary=made.summary[:400],
            created_at=now,
        )
        _insert_once(self.db, lambda: row)
        found = self.produced(made.key)
        assert found is not None
        return found

    def assign(self, task_id: str, offer_no: int, file: AssignedFile, now: datetime) -> None:
        """Record the file assigned to (task, offer); assigning it again replaces the record
        (a dispatcher that took over produced it anew: the same inputs, the same file)."""
        with self.db.write() as s:
            row = s.get(AssignmentRow, (task_id, offer_no))
            if row is None:
                s.add(
                    AssignmentRow(
                        task_id=task_id,
                        offer_no=offer_no,
                        sha256=file.sha256,
                        size_bytes=file.size_bytes,
                        grams=file.grams,
                        time_s=file.time_s,
                        created_at=now,
                    )
                )
                return
            row.sha256, row.size_bytes = file.sha256, file.size_bytes
            row.grams, row.time_s = file.grams, file.time_s

    def assigned(self, task_id: str, offer_no: int) -> AssignedFile | None:
        with self.db.read() as s:
            row = s.get(AssignmentRow, (task_id, offer_no))
            if row is None:
                return None
            return AssignedFile(row.sha256, row.size_bytes, row.grams, row.time_s)

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """The shared secret ``name`` (hex); the first caller's ``make()`` defines it."""
        with self.db.read() as s:
            found = s.scalar(select(HubSecretRow.value_hex).where(HubSecretRow.name == name))
        if found is not None:
            return found
        _insert_once(self.db, lambda: HubSecretRow(name=name, value_hex=make()))
        with self.db.read() as s:
            value = s.scalar(select(HubSecretRow.value_hex).where(HubSecretRow.name == name))
        assert value is not None
        return value


def _insert_once(db: Database, make_row: Callable[[], Base]) -> None:
    """Insert the row unless its primary key is taken (by another process, perhaps just now)."""
    try:
        with db.write() as s:
            row = make_row()
            mapper = type(row).__mapper__
            key = mapper.primary_key_from_instance(row)
            if s.get(type(row), tuple(key)) is None:
                s.add(row)
    except IntegrityError:
        pass  # inserted by another process between our look and our insert: theirs stands
