"""Failure causes and holds as people see them (issue 10, item 4): each attempt's cause on the
task (API and page), the maker's machine list with its last failure and its hold, releasing a
hold (API and the dashboard's button), and ``/metrics`` in Prometheus' text format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.core import events as ev
from fabnet.core.states import FailureCause
from fabnet.web.api.machines import MACHINE, RELEASED_HOLD

ADA = "ada/mk3s-1"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def _fail_on_ada(hub: ApiHub, cause: FailureCause) -> str:
    """A one-task job run on ada's machine until it fails with ``cause``; the task id."""
    task_id = hub.offer(hub.job("rita"), ADA)
    n = hub.store.tasks.get(task_id).offer_no
    now = datetime.now(UTC)
    for event in (
        ev.TaskAccepted(machine_id=ADA, offer_no=n),
        ev.TaskStarted(machine_id=ADA, offer_no=n),
        ev.TaskFailed(machine_id=ADA, offer_no=n, reason="Thermal Runaway", cause=cause),
    ):
        hub.store.apply_event(task_id, event, now)
    return task_id


def test_the_task_shows_why_its_attempt_ended(hub: ApiHub) -> None:
    task_id = _fail_on_ada(hub, FailureCause.THERMAL_FAULT)
    detail = json_of(hub.client("rita").get(f"/api/v1/tasks/{task_id}"))
    assert [a["failure"] for a in detail["attempts"]] == ["thermal_fault"]
    page = hub.client("rita").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'data-failure="thermal_fault"' in page and "thermal fault" in page


def test_a_held_machine_is_shown_to_its_maker_and_released_by_them(hub: ApiHub) -> None:
    _fail_on_ada(hub, FailureCause.LINK_LOST)
    assert hub.store.holds.hold(ADA, "3 failures in a row, the last link_lost", datetime.now(UTC))
    (listed,) = json_of(hub.client("ada").get("/api/v1/machines"))
    listed = MACHINE.validate(listed)
    assert (listed["held"], listed["last_failure"]) == (True, "link_lost")
    assert listed["hold_reason"] == "3 failures in a row, the last link_lost"
    page = hub.client("ada").get("/maker").get_data(as_text=True)
    assert f'data-held="{ADA}"' in page and f'data-release-hold="{ADA}"' in page
    assert "link lost" in page
    url = f"/api/v1/machines/{ADA}/release-hold"
    assert hub.client("bruno").post(url).status_code == 403
    answer = hub.client("ada").post(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert RELEASED_HOLD.validate(json_of(answer)) == {"machine_id": ADA, "held": False}
    assert not hub.store.catalog.get_machine(ADA).held
    assert hub.client("ada").post(url).status_code == 409  # not on hold any more


def test_the_dashboard_button_releases_a_hold(hub: ApiHub) -> None:
    hub.store.holds.hold(ADA, "3 failures in a row", datetime.now(UTC))
    answer = hub.client("olga").post(f"/maker/machines/{ADA}/release-hold")
    assert answer.status_code == 303
    assert hub.store.holds.get(ADA) is None
    changes = hub.store.accounts.machine_changes(ADA)
    assert changes[-1].change == {"hold": "released"} and changes[-1].user_name == "olga"


def test_metrics_are_prometheus_text_for_operators_only(hub: ApiHub) -> None:
    for _ in range(2):
        _fail_on_ada(hub, FailureCause.THERMAL_FAULT)
    _fail_on_ada(hub, FailureCause.MACHINE_RESET)
    hub.store.holds.hold(ADA, "3 failures in a row", datetime.now(UTC))
    assert hub.app.test_client().get("/metrics").status_code == 401
    assert hub.client("ada").get("/metrics").status_code == 403
    answer = hub.client("boot").get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type == "text/plain; version=0.0.4; charset=utf-8"
    lines = answer.get_data(as_text=True).splitlines()
    assert f'fabnet_task_failures_total{{cause="thermal_fault",machine="{ADA}"}} 2.0' in lines
    assert f'fabnet_task_failures_total{{cause="machine_reset",machine="{ADA}"}} 1.0' in lines
    assert "# TYPE fabnet_task_failures_total counter" in lines
    assert 'fabnet_tasks{state="queued"} 3.0' in lines  # max_attempts 3: each went back
    assert 'fabnet_tasks{state="done"} 0.0' in lines
    assert "fabnet_machines_held 1.0" in lines
    samples = [line for line in lines if line and not line.startswith("#")]
    assert all(len(line.rsplit(" ", 1)) == 2 for line in samples)
    assert hub.client("olga").get("/metrics").status_code == 200
