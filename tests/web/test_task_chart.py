"""A task's temperatures: kept per task in the store (bounded, only from the machine that holds
the task) and drawn on the task's page as a server-rendered SVG chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dashboard_support import CUBE, WebHub, make_web_hub

from fabnet.core import events as ev
from fabnet.hub.service import JobRequest
from fabnet.store.telemetry import KEEP_SAMPLES, PRUNE_EVERY, TelemetryRow, TemperatureSample
from fabnet.web.charts import temperature_chart

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MACHINE = "ada/mk3s-1"


@pytest.fixture
def hub(tmp_path: Path) -> WebHub:
    return make_web_hub(tmp_path)


def _running_task(hub: WebHub) -> str:
    info = hub.service.submit(
        JobRequest(design=CUBE, quantity=1, material="PLA", quality="draft", requester="rita")
    )
    task_id = hub.store.tasks.find(job_id=info.spec.job_id)[0].task_id
    now = datetime.now(UTC)
    for step in (
        ev.TaskOffered(machine_id=MACHINE, offer_s=30),
        ev.TaskAccepted(machine_id=MACHINE, offer_no=1, lease_s=60),
        ev.TaskAssigned(machine_id=MACHINE, offer_no=1, lease_s=60),
        ev.TaskStarted(machine_id=MACHINE, offer_no=1, lease_s=60),
    ):
        hub.store.apply_event(task_id, step, now)
    return task_id


def _sample(i: int) -> TemperatureSample:
    hotend = min(215.0, 25.0 + 4 * i)
    return TemperatureSample(
        T0 + timedelta(seconds=2 * i), hotend, 215.0, min(60.0, 25.0 + i), 60.0
    )


def test_history_is_bounded_and_only_the_holding_machine_writes(hub: WebHub) -> None:
    task_id = _running_task(hub)
    log = hub.store.telemetry
    assert not log.record(task_id, "bruno/ender3-1", _sample(0)), "not bruno's task"
    assert not log.record("0" * 32, MACHINE, _sample(0)), "no such task"
    count = KEEP_SAMPLES + 2 * PRUNE_EVERY + 7
    for i in range(count):
        assert log.record(task_id, MACHINE, _sample(i))
    history = log.history(task_id)
    assert len(history) == KEEP_SAMPLES
    assert history[-1] == _sample(count - 1) and history[0] == _sample(count - KEEP_SAMPLES)
    with hub.store.db.read() as session:
        rows = session.query(TelemetryRow).filter_by(task_id=task_id).count()
    assert KEEP_SAMPLES <= rows < KEEP_SAMPLES + PRUNE_EVERY, "trimmed as it grows"


def test_task_page_draws_hotend_and_bed_over_time(hub: WebHub) -> None:
    task_id = _running_task(hub)
    page = hub.client("rita").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'id="temperatures"' not in page, "no readings, no chart"
    for i in range(60):
        hub.store.telemetry.record(task_id, MACHINE, _sample(i))
    page = hub.client("rita").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'id="temperatures"' in page
    start = page.index("<svg", page.index('id="temperatures"'))
    svg = ET.fromstring(page[start : page.index("</svg>", start) + len("</svg>")])
    lines = {p.get("data-key"): p.get("points", "").split() for p in svg.iter(f"{SVG}polyline")}
    assert set(lines) == {"hotend_c", "hotend_target_c", "bed_c", "bed_target_c"}
    assert all(len(points) == 60 for points in lines.values())
    hotend_y = [float(p.split(",")[1]) for p in lines["hotend_c"]]
    assert hotend_y[0] > hotend_y[-1], "heating up: the line rises (SVG y grows downwards)"
    latest = next(t for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-latest")
    assert latest.text == "hotend 215 °C · bed 60 °C"


def test_chart_without_readings_says_so_and_keeps_missing_heaters_out() -> None:
    empty = ET.fromstring(str(temperature_chart([])))
    assert any(t.text == "no readings yet" for t in empty.iter(f"{SVG}text"))
    bed_only = [
        TemperatureSample(T0 + timedelta(seconds=i), None, None, 50.0, 60.0) for i in range(3)
    ]
    svg = ET.fromstring(str(temperature_chart(bed_only)))
    keys = {p.get("data-key") for p in svg.iter(f"{SVG}polyline")}
    assert keys == {"bed_c", "bed_target_c"}
