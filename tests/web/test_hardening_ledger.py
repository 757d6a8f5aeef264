"""The ledger by job, machine or maker shows a non-operator only their own rows (issue 13,
item 12): a requester's jobs, a maker's machines; operators see all; by material the totals
stay the network's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.core import events as ev


def run_to_done(hub: ApiHub, requester: str, machine_id: str) -> str:
    job_id = hub.job(requester)
    task_id = hub.offer(job_id, machine_id)
    now = datetime.now(UTC)
    for event in (
        ev.TaskAccepted(machine_id=machine_id, offer_no=1),
        ev.TaskAssigned(machine_id=machine_id, offer_no=1),
        ev.TaskCompleted(machine_id=machine_id, offer_no=1, grams=10, machine_hours=1),
    ):
        hub.store.apply_event(task_id, event, now)
    return job_id


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def groups(hub: ApiHub, user: str, by: str) -> set[str]:
    answer = hub.client(user).get(f"/api/v1/ledger/totals?by={by}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return set(json_of(answer))


def series_keys(hub: ApiHub, user: str, by: str) -> set[str]:
    answer = hub.client(user).get(f"/api/v1/ledger/series?by={by}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {point["key"] for point in json_of(answer)}


def test_each_role_sees_only_its_own_rows(hub: ApiHub) -> None:
    ritas = run_to_done(hub, "rita", "bruno/ender3-1")
    ravis = run_to_done(hub, "ravi", "ada/mk3s-1")
    assert groups(hub, "olga", "job") == {ritas, ravis}
    assert groups(hub, "rita", "job") == {ritas}
    assert groups(hub, "rita", "maker") == {"bruno"}  # who made her job
    assert groups(hub, "rita", "machine") == {"bruno/ender3-1"}
    assert groups(hub, "bruno", "machine") == {"bruno/ender3-1"}
    assert groups(hub, "bruno", "job") == {ritas}  # made on his machine
    assert groups(hub, "ada", "maker") == {"ada"}
    assert groups(hub, "ravi", "machine") == {"ada/mk3s-1"}
    assert series_keys(hub, "rita", "job") == {ritas}
    assert series_keys(hub, "bruno", "maker") == {"bruno"}
    assert series_keys(hub, "olga", "maker") == {"ada", "bruno"}
    # not grouped by anyone's own things: the network's production figures
    assert groups(hub, "rita", "material") == {"PLA"}
    totals = json_of(hub.client("rita").get("/api/v1/ledger/totals"))
    assert totals["all"]["tasks"] == 2
    spec = json_of(hub.client("olga").get("/api/v1/openapi.json"))
    assert "only their own" in spec["paths"]["/api/v1/ledger/totals"]["get"]["summary"]
