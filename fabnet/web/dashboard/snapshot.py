"""Reads behind the pages and the live stream: counts, machines with their current task,
production figures, stuck tasks and a job's progress — from the store, never kept elsewhere."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fabnet.core.ledger import LedgerKey, SeriesPoint, Totals, series
from fabnet.core.machines import Machine
from fabnet.core.states import LEASED_TASK_STATES, TaskState
from fabnet.core.tasks import TaskSnapshot
from fabnet.hub.machines import split_machine_id
from fabnet.store import Store
from fabnet.web.charts import WallTile

COUNT_CAP = 100_000  # tasks read per state for the counts (the store has no COUNT query yet)
SERIES_WINDOW = timedelta(hours=1)
SERIES_BUCKET = timedelta(minutes=2)
LEASE_WARN = timedelta(seconds=5)  # a lease this close to running out marks the task stuck
MANY_OFFERS = 3
STUCK_SHOWN = 12


@dataclass(frozen=True)
class Production:
    """Ledger sums: ``total`` ever, ``today`` since UTC midnight, and a series by material."""

    total: Totals
    today: Totals
    points: list[SeriesPoint]
    by_material: dict[str, Totals]


def task_counts(store: Store) -> dict[str, int]:
    """Tasks per state (every state present, zero where none)."""
    return {s.value: len(store.tasks.find(state=s, limit=COUNT_CAP)) for s in TaskState}


def active_tasks(store: Store) -> dict[str, TaskSnapshot]:
    """The task each machine holds under a lease, by machine id."""
    out: dict[str, TaskSnapshot] = {}
    for state in LEASED_TASK_STATES:
        for task in store.tasks.find(state=state, limit=COUNT_CAP):
            if task.machine_id:
                out[task.machine_id] = task
    return out


def machine_counts(machines: list[Machine]) -> dict[str, dict[str, int]]:
    """Machines by kind, then by state."""
    out: dict[str, Counter[str]] = {}
    for m in machines:
        out.setdefault(m.kind.value, Counter())[m.state.value] += 1
    return {kind: dict(c) for kind, c in sorted(out.items())}


def wall_tiles(machines: list[Machine], active: dict[str, TaskSnapshot]) -> list[WallTile]:
    tiles = []
    for m in machines:
        task = active.get(m.machine_id)
        tiles.append(
            WallTile(
                m.machine_id,
                m.state.value,
                m.kind.value,
                task.task_id if task else None,
                task.progress if task else 0.0,
            )
        )
    return tiles


def production(store: Store, now: datetime, maker_id: str | None = None) -> Production:
    """Totals and the grams-by-material series over the last ``SERIES_WINDOW``."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = now - SERIES_WINDOW
    start = since.replace(second=0, microsecond=0)
    if maker_id is None:
        total = store.ledger_totals().get("all", Totals())
        today = store.ledger_totals(since=midnight).get("all", Totals())
        by_material = store.ledger_totals(LedgerKey.MATERIAL)
        points = store.ledger_series(start, now + SERIES_BUCKET, SERIES_BUCKET)
    else:
        entries = store.ledger.entries(maker_id=maker_id)
        total = sum((Totals.of(e) for e in entries), Totals())
        today = sum((Totals.of(e) for e in entries if e.finished_at >= midnight), Totals())
        by_material = {}
        for e in entries:
            by_material[e.material] = by_material.get(e.material, Totals()) + Totals.of(e)
        points = series(entries, start, now + SERIES_BUCKET, SERIES_BUCKET)
    return Production(total, today, points, by_material)


def stuck_tasks(store: Store, now: datetime) -> list[TaskSnapshot]:
    """Failed tasks, tasks offered many times, and leases about to run out — with attempts."""
    found: dict[str, TaskSnapshot] = {}
    for task in store.tasks.find(state=TaskState.FAILED, limit=STUCK_SHOWN):
        found[task.task_id] = task
    for state in (TaskState.QUEUED, TaskState.OFFERED, *LEASED_TASK_STATES):
        for task in store.tasks.find(state=state, limit=COUNT_CAP):
            lease_short = task.lease_until is not None and task.lease_until - now < LEASE_WARN
            if task.offer_no >= MANY_OFFERS or (task.state.holds_lease and lease_short):
                found[task.task_id] = task
            if len(found) >= STUCK_SHOWN:
                break
    return [store.tasks.get(t) for t in list(found)[:STUCK_SHOWN]]


def job_progress(store: Store, job_id: str) -> dict[str, Any]:
    """A job's state and each task's state, progress (0..1), machine and maker, JSON-ready."""
    info = store.jobs.get(job_id)
    tasks = store.tasks.find(job_id=job_id, limit=COUNT_CAP)
    total = len(tasks) or 1
    done = sum(1 for t in tasks if t.state is TaskState.DONE)
    overall = sum(1.0 if t.state is TaskState.DONE else t.progress for t in tasks) / total
    return {
        "state": info.state.value,
        "done": done,
        "total": len(tasks),
        "progress": round(overall, 4),
        "progress_text": f"{done}/{len(tasks)} done · {overall * 100:.0f} %",
        "tasks": {
            t.task_id: {
                "state": t.state.value,
                "progress": round(1.0 if t.state is TaskState.DONE else t.progress, 4),
                "percent": f"{(1.0 if t.state is TaskState.DONE else t.progress) * 100:.0f} %",
                "machine": t.machine_id or "",
                "maker": split_machine_id(t.machine_id)[0] if t.machine_id else "",
            }
            for t in tasks
        },
    }


def machines_json(
    machines: list[Machine], active: dict[str, TaskSnapshot]
) -> dict[str, dict[str, Any]]:
    """Machine id -> state, current task and its progress, JSON-ready."""
    out: dict[str, dict[str, Any]] = {}
    for m in machines:
        task = active.get(m.machine_id)
        out[m.machine_id] = {
            "state": m.state.value,
            "task": task.task_id if task else "",
            "progress": round(task.progress, 4) if task else 0.0,
            "percent": f"{task.progress * 100:.0f} %" if task else "",
        }
    return out


def totals_json(t: Totals) -> dict[str, Any]:
    return {
        "tasks": t.tasks,
        "parts": t.parts,
        "grams": round(t.grams, 1),
        "grams_text": f"{t.grams:.1f} g",
        "hours": round(t.machine_hours, 2),
        "hours_text": f"{t.machine_hours:.2f} h",
    }


def now_utc() -> datetime:
    return datetime.now(UTC)
