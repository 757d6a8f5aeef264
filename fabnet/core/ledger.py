"""The ledger: one entry per finished task, and the pure sums the dashboard shows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput

FAIRNESS_WINDOW = timedelta(days=7)


class LedgerKey(StrEnum):
    """What to group ledger sums by."""

    MATERIAL = "material"
    MAKER = "maker_id"
    MACHINE = "machine_id"
    DESIGN = "design_id"
    JOB = "job_id"


@dataclass(frozen=True)
class LedgerEntry:
    """A finished task: who made it, on what, from what, how much (grams, hours, parts)."""

    task_id: str
    job_id: str
    maker_id: str
    machine_id: str
    design_id: str
    material: str
    grams: float
    machine_hours: float
    parts: int
    finished_at: datetime


@dataclass(frozen=True)
class Totals:
    """Sums over some ledger entries."""

    tasks: int = 0
    parts: int = 0
    grams: float = 0.0
    machine_hours: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.tasks + other.tasks,
            self.parts + other.parts,
            self.grams + other.grams,
            self.machine_hours + other.machine_hours,
        )

    @classmethod
    def of(cls, entry: LedgerEntry) -> Totals:
        """The totals of one entry."""
        return cls(1, entry.parts, entry.grams, entry.machine_hours)


@dataclass(frozen=True)
class SeriesPoint:
    """Totals of one group in one time bucket starting at ``start``."""

    start: datetime
    key: str
    totals: Totals


def totals(entries: Iterable[LedgerEntry], by: LedgerKey | None = None) -> dict[str, Totals]:
    """Sum entries grouped ``by`` a key; with ``by=None`` one group named ``"all"``."""
    out: dict[str, Totals] = defaultdict(Totals)
    for e in entries:
        key = "all" if by is None else str(getattr(e, by.value))
        out[key] = out[key] + Totals.of(e)
    return dict(out)


def series(
    entries: Iterable[LedgerEntry],
    start: datetime,
    end: datetime,
    bucket: timedelta,
    by: LedgerKey = LedgerKey.MATERIAL,
) -> list[SeriesPoint]:
    """Totals per ``bucket`` from ``start`` (inclusive) to ``end`` (exclusive), per group.

    Every bucket appears for every group seen, with zero totals where nothing finished, so a
    chart has no gaps. Sorted by bucket start, then key. Raises ``InvalidInput`` for a bucket
    that is not positive or more than 100,000 buckets.
    """
    start, end = require_utc("start", start), require_utc("end", end)
    if bucket <= timedelta(0):
        raise InvalidInput(f"bucket must be positive, got {bucket}")
    count = max(0, -(-(end - start) // bucket))
    if count > 100_000:
        raise InvalidInput(f"series would have {count} buckets; use a larger bucket")
    sums: dict[tuple[int, str], Totals] = defaultdict(Totals)
    keys: set[str] = set()
    for e in entries:
        if not start <= e.finished_at < end:
            continue
        key = str(getattr(e, by.value))
        keys.add(key)
        slot = (e.finished_at - start) // bucket
        sums[(slot, key)] = sums[(slot, key)] + Totals.of(e)
    return [
        SeriesPoint(start + i * bucket, key, sums.get((i, key), Totals()))
        for i in range(count)
        for key in sorted(keys)
    ]


def recent_hours_by_maker(
    entries: Iterable[LedgerEntry], now: datetime, window: timedelta = FAIRNESS_WINDOW
) -> dict[str, float]:
    """Machine-hours per maker finished in ``(now - window, now]``: the fairness tally."""
    now = require_utc("now", now)
    since = now - window
    out: dict[str, float] = defaultdict(float)
    for e in entries:
        if since < e.finished_at <= now:
            out[e.maker_id] += e.machine_hours
    return dict(out)
