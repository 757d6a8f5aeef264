"""Quotes (issue 11): what a job would cost on each machine able to make it, fee included,
and when it would be done given the queue ahead of it; pure arithmetic over the prices of
``fabnet.core.credits``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fabnet.core.credits import price_mc, with_fee
from fabnet.errors import InvalidInput


@dataclass(frozen=True)
class Candidate:
    """An eligible machine as a quote sees it: its speed and its price for the material."""

    machine_id: str
    maker_id: str
    speed_factor: float
    per_hour_mc: int
    per_kg_mc: int


@dataclass(frozen=True)
class MachineQuote:
    machine_id: str
    maker_id: str
    hours_per_part: float
    total_mc: int  # the whole quantity, fee included


@dataclass(frozen=True)
class Quote:
    """Prices for the whole quantity, fee included (None when no machine can make it);
    ``eta_hours``: time to completion given the queue; machines cheapest first."""

    quantity: int
    lowest_mc: int | None
    typical_mc: int | None
    highest_mc: int | None
    eta_hours: float | None
    machines: tuple[MachineQuote, ...]


def quote(
    candidates: Sequence[Candidate],
    hours_per_part: float,
    grams_per_part: float,
    quantity: int,
    fee_bp: int,
    queue_hours: float = 0.0,
) -> Quote:
    """Price ``quantity`` parts (one per task) on each candidate: lowest, typical (the median
    machine) and highest, and when the job would be done if the candidates worked off the
    ``queue_hours`` ahead of it and then its parts in parallel."""
    if quantity < 1:
        raise InvalidInput(f"quantity must be >= 1, got {quantity}")
    if not candidates:
        return Quote(quantity, None, None, None, None, ())
    rows = []
    for c in candidates:
        hours = hours_per_part / c.speed_factor
        part = with_fee(price_mc(c.per_hour_mc, c.per_kg_mc, hours, grams_per_part), fee_bp)
        rows.append(MachineQuote(c.machine_id, c.maker_id, hours, part * quantity))
    rows.sort(key=lambda q: (q.total_mc, q.machine_id))
    totals = [q.total_mc for q in rows]
    return Quote(
        quantity,
        totals[0],
        totals[(len(totals) - 1) // 2],
        totals[-1],
        eta_hours(queue_hours, hours_per_part, quantity, [c.speed_factor for c in candidates]),
        tuple(rows),
    )


def eta_hours(
    queue_hours: float, hours_per_part: float, quantity: int, speeds: Sequence[float]
) -> float:
    """Hours until ``quantity`` parts are done on machines of ``speeds`` that first work off
    ``queue_hours`` (nominal) of queued work: total work over total speed, and never less than
    one part on the fastest machine after the queue ahead of it."""
    if not speeds:
        raise InvalidInput("eta needs at least one machine")
    capacity = sum(speeds)
    spread = (queue_hours + hours_per_part * quantity) / capacity
    return max(spread, queue_hours / capacity + hours_per_part / max(speeds))
