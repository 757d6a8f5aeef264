"""Reads behind the pages and the live stream that are per user or per job: a job's progress,
a maker's machines with their current task, JSON-ready totals — bounded, from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fabnet.core.ledger import Totals
from fabnet.core.machines import Machine
from fabnet.core.states import TaskState
from fabnet.core.tasks import TaskSnapshot
from fabnet.hub.machines import split_machine_id
from fabnet.store.listings import Listings

SERIES_WINDOW = timedelta(hours=1)
SERIES_BUCKET = timedelta(minutes=2)
JOB_TASKS_SHOWN = 500  # tasks listed on a job's page; its progress counts all of them


def job_progress(listings: Listings, job_id: str, state: str) -> dict[str, Any]:
    """A job's ``state`` and progress (0..1) over all its tasks, and the first
    ``JOB_TASKS_SHOWN`` tasks' state, progress, machine and maker, JSON-ready."""
    tasks, progress = listings.job_tasks(job_id, JOB_TASKS_SHOWN)
    return {
        "state": state,
        "done": progress.done,
        "total": progress.total,
        "shown": len(tasks),
        "progress": round(progress.fraction, 4),
        "progress_text": (
            f"{progress.done}/{progress.total} done · {progress.fraction * 100:.0f} %"
        ),
        "tasks": {t.task_id: _task_json(t) for t in tasks},
    }


def _task_json(t: TaskSnapshot) -> dict[str, Any]:
    fraction = 1.0 if t.state is TaskState.DONE else t.progress
    return {
        "state": t.state.value,
        "progress": round(fraction, 4),
        "percent": f"{fraction * 100:.0f} %",
        "machine": t.machine_id or "",
        "maker": split_machine_id(t.machine_id)[0] if t.machine_id else "",
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
