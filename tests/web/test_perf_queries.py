"""The dashboard's reads stay bounded as the network grows: on a store of 2,000 machines and
20,000 tasks every page and the live stream issue a fixed, small number of SQL statements and
list a bounded number of rows. Structural, not timed: statements are counted on the engine."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashboard_support import CUBE, WebHub, make_web_hub, run_job
from sqlalchemy import event, insert

from fabnet.core.states import TaskState
from fabnet.store.models import JobRow, LedgerRow, MachineRow, MakerRow, TaskRow
from fabnet.store.overview import OverviewReads
from fabnet.web.dashboard.network import STUCK_SHOWN, WALL_SHOWN, network_figures
from fabnet.web.events import MACHINES_SENT

MAKERS, MACHINES_PER_MAKER = 200, 10
JOBS, TASKS_PER_JOB = 2_000, 10
STATES = ["done"] * 6 + ["queued", "offered", "running", "failed"]
# What a request may cost whatever the network's size: auth's own read of the user and the
# page's handful (1 to 7 today). The pages issued 82 (overview) and 4,012 (maker page) before.
PAGE_STATEMENTS_MAX = 10


def _fill(hub: WebHub, now: datetime) -> dict[str, int]:
    """Bulk-insert makers, machines, jobs, tasks and ledger rows; how many tasks per state."""
    rnd = random.Random(3)
    design_id = hub.service.designs.resolve(CUBE).design_id
    makers = [{"id": f"p{i:04d}", "name": f"P {i}", "created_at": now} for i in range(MAKERS)]
    machines: list[dict[str, Any]] = [
        {"id": f"{m['id']}/m{k}", "maker_id": m["id"], "name": f"m{k}", "kind": "fdm",
         "profile": "prusa_mk3s", "driver": "sim", "nozzle_mm": 0.4, "volume_x_mm": 250.0,
         "volume_y_mm": 210.0, "volume_z_mm": 210.0, "speed_factor": 1.0, "materials": ["PLA"],
         "policy": {"auto_accept": k != 0}, "state": rnd.choice(["idle", "busy", "offline"]),
         "last_seen": now}
        for m in makers for k in range(MACHINES_PER_MAKER)
    ]  # fmt: skip
    jobs, tasks, ledger = [], [], []
    counts: dict[str, int] = {}
    for j in range(JOBS):
        job_id = f"f{j:031x}"
        jobs.append(
            {"id": job_id, "requester": f"req{j % 50}", "design_id": design_id, "kind": "fdm",
             "material": "PLA", "quantity": TASKS_PER_JOB, "part_x_mm": 20.0,
             "part_y_mm": 20.0, "part_z_mm": 20.0, "hours_per_part": 0.5, "quality": "normal",
             "priority": 0, "deadline": None, "parts_per_task": 1, "max_attempts": 3,
             "nozzle_mm": None, "created_at": now - timedelta(minutes=JOBS - j)}
        )  # fmt: skip
        for t in range(TASKS_PER_JOB):
            state = STATES[(j + t) % len(STATES)]
            counts[state] = counts.get(state, 0) + 1
            machine = machines[(j * 7 + t) % len(machines)]["id"]
            held = state in ("offered", "running")
            tasks.append(
                {"id": f"f{j:015x}{t:016x}", "job_id": job_id, "index": t, "parts": 1,
                 "size_x_mm": 20.0, "size_y_mm": 20.0, "size_z_mm": 20.0,
                 "estimated_hours": 0.5, "kind": "fdm", "material": "PLA", "nozzle_mm": None,
                 "priority": 0, "deadline": None, "state": state, "max_attempts": 3,
                 "offer_no": 1, "machine_id": machine if held else None,
                 "offer_until": now + timedelta(hours=1) if state == "offered" else None,
                 "lease_until": now + timedelta(hours=1) if state == "running" else None,
                 "progress": 0.5 if state == "running" else 0.0, "created_at": now,
                 "updated_at": now}
            )  # fmt: skip
            if state == "done":
                ledger.append(
                    {"task_id": tasks[-1]["id"], "job_id": job_id,
                     "maker_id": machine.split("/")[0], "machine_id": machine,
                     "design_id": design_id, "material": "PLA", "grams": 2.0,
                     "machine_hours": 0.25, "parts": 1,
                     "finished_at": now - timedelta(minutes=rnd.randrange(0, 600))}
                )  # fmt: skip
    with hub.store.db.engine.begin() as conn:
        for table, rows in ((MakerRow, makers), (MachineRow, machines), (JobRow, jobs),
                            (TaskRow, tasks), (LedgerRow, ledger)):  # fmt: skip
            conn.execute(insert(table), rows)
    return counts


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebHub, dict[str, int]]]:
    hub = make_web_hub(tmp_path_factory.mktemp("big"))
    run_job(hub, "rita")  # one real job: a done task on ada's machine, an offer to bruno
    counts = _fill(hub, datetime.now(UTC))
    yield hub, counts
    hub.store.close()


@contextmanager
def counted(hub: WebHub) -> Iterator[list[str]]:
    """The SQL statements this thread runs on the hub's engine inside the block (SQLite's
    ``BEGIN`` of each transaction left out; so is the shared figures' background refresh)."""
    seen: list[str] = []
    me = threading.get_ident()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == me and not statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(hub.store.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(hub.store.db.engine, "before_cursor_execute", record)


def test_network_figures_are_a_dozen_statements_and_bounded_lists(
    big: tuple[WebHub, dict[str, int]],
) -> None:
    hub, counts = big
    with counted(hub) as seen:
        figures = network_figures(OverviewReads(hub.store.db), datetime.now(UTC))
    assert len(seen) <= 12, seen
    data = figures.data
    assert data["counts"]["done"] == counts["done"] + 1  # + the real job's task
    assert sum(data["counts"].values()) == JOBS * TASKS_PER_JOB + 2
    assert data["totals"]["parts"] == counts["done"] + 1
    assert sum(data["machine_counts"]["fdm"].values()) == MAKERS * MACHINES_PER_MAKER + 2
    wall = data["charts"]["wall"]
    assert 0 < wall.count('class="tile"') <= WALL_SHOWN
    assert f"and {MAKERS * MACHINES_PER_MAKER + 2 - WALL_SHOWN} more machines" in wall
    assert 'data-state="busy"' in wall and 'data-state="offline"' not in wall  # busy first
    assert 0 < len(figures.stuck) <= STUCK_SHOWN
    assert any(t.state is TaskState.FAILED for t in figures.stuck)


def _page(hub: WebHub, user: str, path: str) -> tuple[str, list[str]]:
    client = hub.client(user)
    client.get(path)  # warm: templates, the shared figures
    with counted(hub) as seen:
        answer = client.get(path)
        text = answer.get_data(as_text=True)
    assert answer.status_code == 200, text
    return text, seen


def test_operator_overview_is_bounded(big: tuple[WebHub, dict[str, int]]) -> None:
    hub, _ = big
    page, seen = _page(hub, "olga", "/")
    assert len(seen) <= PAGE_STATEMENTS_MAX, seen
    assert page.count('class="tile"') <= WALL_SHOWN
    stuck_rows = re.findall(r'<td><a href="/tasks/', page)
    assert 0 < len(stuck_rows) <= STUCK_SHOWN


def test_maker_page_is_bounded_and_paged(big: tuple[WebHub, dict[str, int]]) -> None:
    hub, _ = big
    everyone, seen = _page(hub, "olga", "/maker")  # an operator: every maker's machines
    assert len(seen) <= PAGE_STATEMENTS_MAX, seen
    rows = re.findall(r'<tr data-machine="([^"]+)"', everyone)
    assert len(rows) == 50 and 'id="machine-pager"' in everyone
    assert "page 1 of" in everyone
    second, _ = _page(hub, "olga", "/maker?page=2")
    assert not set(rows) & set(re.findall(r'<tr data-machine="([^"]+)"', second))
    assert len(re.findall(r"data-accept=", everyone)) <= 50
    ada, seen = _page(hub, "ada", "/maker")
    assert len(seen) <= PAGE_STATEMENTS_MAX, seen
    assert re.findall(r'<tr data-machine="([^"]+)"', ada) == ["ada/mk3s-1"]
    assert 'id="my-grams">7.5 g<' in ada  # her own ledger only, summed by the database


def test_jobs_pages_are_bounded_and_paged(big: tuple[WebHub, dict[str, int]]) -> None:
    hub, _ = big
    page, seen = _page(hub, "olga", "/jobs")
    assert len(seen) <= PAGE_STATEMENTS_MAX, seen
    first = re.findall(r'<td><a href="/jobs/(\w+)"', page)
    assert len(first) == 50 and 'rel="next"' in page
    later, _ = _page(hub, "olga", "/jobs?page=3")
    assert not set(first) & set(re.findall(r'<td><a href="/jobs/(\w+)"', later))
    assert hub.client("olga").get("/jobs?page=0").status_code == 400
    job_id = "f" + f"{7:031x}"
    one, seen = _page(hub, "olga", f"/jobs/{job_id}")
    assert len(seen) <= PAGE_STATEMENTS_MAX, seen
    assert one.count("<tr data-task=") == TASKS_PER_JOB


def test_live_stream_is_bounded_per_tick(big: tuple[WebHub, dict[str, int]]) -> None:
    hub, _ = big
    client = hub.client("olga")
    job_id = "f" + f"{7:031x}"
    for view in ("overview", "maker"):
        with counted(hub) as seen:
            answer = client.get(f"/events?view={view}&job={job_id}", buffered=False)
            data = ""
            for chunk in answer.response:
                text = chunk.decode() if isinstance(chunk, bytes) else chunk
                if text.startswith("data: "):
                    data = text[len("data: ") :]
                    break
            answer.close()
        snapshot = json.loads(data)
        assert len(seen) <= PAGE_STATEMENTS_MAX, seen
        assert len(snapshot["machines"]) <= MACHINES_SENT
        assert len(snapshot["jobs"][job_id]["tasks"]) == TASKS_PER_JOB
        assert len(data) < 200_000, f"a {len(data)}-byte snapshot on view={view}"
