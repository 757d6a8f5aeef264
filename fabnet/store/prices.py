"""Prices in the database (issue 11): each machine's price as its maker set it, and the
operator's network terms (fee, currency, credit value) over the config's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabnet.core import credits as cr
from fabnet.core.timeutil import require_utc
from fabnet.errors import NotFound
from fabnet.store.credit_models import MachinePriceRow, NetworkTermsRow
from fabnet.store.database import Database
from fabnet.store.models import MachineRow

TERMS_ROW = 1


def price_in(s: Session, machine_id: str) -> cr.MachinePrice | None:
    """The price its maker set for ``machine_id``, or None (defaults apply)."""
    row = s.get(MachinePriceRow, machine_id)
    return None if row is None else _price(row)


def terms_in(s: Session, defaults: cr.Terms) -> cr.Terms:
    """``defaults`` with the operator's stored fee, currency and credit value."""
    row = s.get(NetworkTermsRow, TERMS_ROW)
    if row is None:
        return defaults
    return replace(
        defaults,
        fee_bp=row.fee_bp,
        currency=row.currency,
        credit_value_milli=int(row.credit_value_milli),
    )


def _price(row: MachinePriceRow) -> cr.MachinePrice:
    per_kg = {str(k): int(v) for k, v in (row.per_kg_mc or {}).items()}
    return cr.MachinePrice(row.machine_id, int(row.per_hour_mc), per_kg)


class Prices:
    """Machine prices and network terms, each call its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, machine_id: str) -> cr.MachinePrice | None:
        return self._db.reading(lambda s: price_in(s, machine_id))

    def all(self) -> dict[str, cr.MachinePrice]:
        """Every machine's set price, by machine id."""
        return self._db.reading(
            lambda s: {r.machine_id: _price(r) for r in s.scalars(select(MachinePriceRow))}
        )

    def set(
        self,
        machine_id: str,
        per_hour_mc: int,
        per_kg_mc: Mapping[str, int],
        by: str,
        now: datetime,
    ) -> cr.MachinePrice:
        """Set ``machine_id``'s price (validated by ``MachinePrice``). Raises ``NotFound``."""
        price = cr.MachinePrice(machine_id, per_hour_mc, dict(per_kg_mc))
        now = require_utc("now", now)
        with self._db.write() as s:
            if s.get(MachineRow, machine_id) is None:
                raise NotFound(f"machine {machine_id} not found")
            row = s.get(MachinePriceRow, machine_id, with_for_update=True)
            if row is None:
                row = MachinePriceRow(machine_id=machine_id)
                s.add(row)
            row.per_hour_mc = price.per_hour_mc
            row.per_kg_mc = dict(price.per_kg_mc)
            row.updated_by = by
            row.updated_at = now
        return price

    def terms(self, defaults: cr.Terms) -> cr.Terms:
        return self._db.reading(lambda s: terms_in(s, defaults))

    def set_terms(self, terms: cr.Terms, by: str, now: datetime) -> cr.Terms:
        """Store the operator's fee, currency and credit value of ``terms`` (already valid)."""
        now = require_utc("now", now)
        with self._db.write() as s:
            row = s.get(NetworkTermsRow, TERMS_ROW, with_for_update=True)
            if row is None:
                row = NetworkTermsRow(id=TERMS_ROW)
                s.add(row)
            row.fee_bp = terms.fee_bp
            row.currency = terms.currency
            row.credit_value_milli = terms.credit_value_milli
            row.updated_by = by
            row.updated_at = now
        return terms
