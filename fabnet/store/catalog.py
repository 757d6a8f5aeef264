"""Makers, their machines and the designs: create, list, get, upsert machine status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from fabnet.core.designs import Design
from fabnet.core.ids import new_id
from fabnet.core.machines import Machine
from fabnet.core.states import MachineState
from fabnet.core.timeutil import require_utc
from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.store.convert import (
    design_from_row,
    design_to_row,
    machine_fields,
    machine_from_row,
)
from fabnet.store.database import Database
from fabnet.store.models import DesignRow, MachineRow, MakerRow


@dataclass(frozen=True)
class Maker:
    """A contributor who owns machines."""

    maker_id: str
    name: str
    created_at: datetime


class Catalog:
    """Makers, machines and designs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_maker(self, name: str, now: datetime, maker_id: str | None = None) -> Maker:
        """Create a maker; raises ``InvalidInput`` for an empty name, ``Conflict`` if the id exists."""
        if not name.strip():
            raise InvalidInput("maker name must not be empty")
        maker = Maker(maker_id or new_id(), name, require_utc("now", now))
        with self._db.write() as s:
            if s.get(MakerRow, maker.maker_id) is not None:
                raise Conflict(f"maker {maker.maker_id} already exists")
            s.add(MakerRow(id=maker.maker_id, name=name, created_at=maker.created_at))
        return maker

    def get_maker(self, maker_id: str) -> Maker:
        """The maker ``maker_id``; raises ``NotFound``."""
        with self._db.read() as s:
            row = s.get(MakerRow, maker_id)
            if row is None:
                raise NotFound(f"maker {maker_id} not found")
            return Maker(row.id, row.name, row.created_at)

    def list_makers(self) -> list[Maker]:
        """All makers, by name."""
        with self._db.read() as s:
            rows = s.scalars(select(MakerRow).order_by(MakerRow.name, MakerRow.id))
            return [Maker(r.id, r.name, r.created_at) for r in rows]

    def upsert_machine(self, machine: Machine) -> Machine:
        """Insert or replace a machine (its maker must exist: ``NotFound``)."""
        with self._db.write() as s:
            if s.get(MakerRow, machine.maker_id) is None:
                raise NotFound(f"maker {machine.maker_id} not found")
            row = s.get(MachineRow, machine.machine_id)
            fields = machine_fields(machine)
            if row is None:
                s.add(MachineRow(id=machine.machine_id, **fields))
            else:
                for key, value in fields.items():
                    setattr(row, key, value)
        return machine

    def set_machine_state(
        self,
        machine_id: str,
        state: MachineState,
        now: datetime,
        materials: frozenset[str] | None = None,
    ) -> Machine:
        """Record a status report: state, last seen ``now`` and, if given, loaded materials.

        Raises ``NotFound`` for an unknown machine.
        """
        now = require_utc("now", now)
        with self._db.write() as s:
            row = s.get(MachineRow, machine_id)
            if row is None:
                raise NotFound(f"machine {machine_id} not found")
            row.state = state.value
            row.last_seen = now
            if materials is not None:
                row.materials = sorted(materials)
            return machine_from_row(row)

    def get_machine(self, machine_id: str) -> Machine:
        """The machine ``machine_id``; raises ``NotFound``."""
        with self._db.read() as s:
            row = s.get(MachineRow, machine_id)
            if row is None:
                raise NotFound(f"machine {machine_id} not found")
            return machine_from_row(row)

    def list_machines(
        self, maker_id: str | None = None, state: MachineState | None = None
    ) -> list[Machine]:
        """Machines, optionally of one maker and/or in one state, by id."""
        query = select(MachineRow).order_by(MachineRow.id)
        if maker_id is not None:
            query = query.where(MachineRow.maker_id == maker_id)
        if state is not None:
            query = query.where(MachineRow.state == state.value)
        with self._db.read() as s:
            return [machine_from_row(r) for r in s.scalars(query)]

    def add_design(self, design: Design, now: datetime) -> Design:
        """Add a design; adding the same id again is a no-op (content-addressed).

        Raises ``NotFound`` if ``remix_of`` names an unknown design.
        """
        now = require_utc("now", now)
        with self._db.write() as s:
            if s.get(DesignRow, design.design_id) is not None:
                return design
            if design.remix_of is not None and s.get(DesignRow, design.remix_of) is None:
                raise NotFound(f"design {design.remix_of} (remix_of) not found")
            s.add(design_to_row(design, now))
        return design

    def get_design(self, design_id: str) -> Design:
        """The design ``design_id``; raises ``NotFound``."""
        with self._db.read() as s:
            row = s.get(DesignRow, design_id)
            if row is None:
                raise NotFound(f"design {design_id} not found")
            return design_from_row(row)

    def list_designs(self) -> list[Design]:
        """All designs, by name."""
        with self._db.read() as s:
            rows = s.scalars(select(DesignRow).order_by(DesignRow.name, DesignRow.id))
            return [design_from_row(r) for r in rows]
