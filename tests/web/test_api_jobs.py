"""Jobs and tasks through the API: owners, operators, 403s, 409s, validation naming fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.web.api.jobs import JOB, JOB_DETAIL, TASK_DETAIL


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def test_requester_submits_lists_and_sees_only_own_jobs(hub: ApiHub) -> None:
    rita = hub.client("rita")
    answer = rita.post(
        "/api/v1/jobs", json={"design": "cube-xyz-20mm", "quantity": 2, "material": "PLA"}
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    job = JOB.validate(json_of(answer))
    assert job["requester"] == "rita" and job["tasks"] == {"queued": 2}
    other = hub.job("ravi")
    listed = json_of(rita.get("/api/v1/jobs"))
    assert [j["id"] for j in listed] == [job["id"]]
    assert rita.get(f"/api/v1/jobs/{other}").status_code == 403
    assert rita.post(f"/api/v1/jobs/{other}/cancel").status_code == 403
    assert rita.get("/api/v1/jobs?requester=ravi").status_code == 403
    detail = JOB_DETAIL.validate(json_of(rita.get(f"/api/v1/jobs/{job['id']}")))
    assert len(detail["task_list"]) == 2
    assert all(t["maker"] is None for t in detail["task_list"])


def test_operator_sees_all_and_submits_for_others(hub: ApiHub) -> None:
    hub.job("rita")
    hub.job("ravi")
    olga = hub.client("olga")
    assert len(json_of(olga.get("/api/v1/jobs"))) == 2
    assert len(json_of(olga.get("/api/v1/jobs?requester=ravi"))) == 1
    body = {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA", "requester": "ravi"}
    assert json_of(olga.post("/api/v1/jobs", json=body))["requester"] == "ravi"
    # a requester cannot do that
    assert hub.client("rita").post("/api/v1/jobs", json=body).status_code == 403


def test_pagination_and_next_offset(hub: ApiHub) -> None:
    for _ in range(5):
        hub.job("rita")
    rita = hub.client("rita")
    first = rita.get("/api/v1/jobs?limit=2")
    assert len(json_of(first)) == 2 and first.headers["X-Next-Offset"] == "2"
    rest = rita.get("/api/v1/jobs?limit=2&offset=4")
    assert len(json_of(rest)) == 1 and "X-Next-Offset" not in rest.headers
    seen = {
        j["id"] for o in (0, 2, 4) for j in json_of(rita.get(f"/api/v1/jobs?limit=2&offset={o}"))
    }
    assert len(seen) == 5
    answer = rita.get("/api/v1/jobs?limit=5000")
    assert (
        answer.status_code == 400
        and "limit must be 1..1000, got 5000" in json_of(answer)["message"]
    )
    answer = rita.get("/api/v1/jobs?colour=red")
    assert answer.status_code == 400 and "colour" in json_of(answer)["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"quantity": 1, "material": "PLA"}, "design is required"),
        (
            {"design": "cube-xyz-20mm", "quantity": 0, "material": "PLA"},
            "quantity must be 1..10000, got 0",
        ),
        (
            {"design": "cube-xyz-20mm", "quantity": "2", "material": "PLA"},
            "quantity must be an integer, got '2'",
        ),
        (
            {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA", "quality": "ultra"},
            "quality must be one of",
        ),
        (
            {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA", "colour": "red"},
            "unknown field(s): colour",
        ),
        ({"design": "cube-xyz-20mm", "quantity": 1, "material": "unobtainium"}, "material"),
        ({"design": "no-such-design", "quantity": 1, "material": "PLA"}, "no-such-design"),
    ],
)
def test_submit_validation_names_field_and_value(
    hub: ApiHub, body: dict[str, object], needle: str
) -> None:
    answer = hub.client("rita").post("/api/v1/jobs", json=body)
    assert answer.status_code in (400, 404)
    assert needle in json_of(answer)["message"]


def test_cancel_then_cancel_again_is_409(hub: ApiHub) -> None:
    job_id = hub.job("rita")
    rita = hub.client("rita")
    assert json_of(rita.post(f"/api/v1/jobs/{job_id}/cancel"))["state"] == "cancelled"
    again = rita.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in json_of(again)["message"]
    assert rita.get("/api/v1/jobs/0123456789abcdef0123456789abcdef").status_code == 404


def test_task_detail_for_owner_maker_and_operator_only(hub: ApiHub) -> None:
    job_id = hub.job("rita")
    task_id = hub.offer(job_id, "bruno/ender3-1")
    for name, status in (("rita", 200), ("bruno", 200), ("olga", 200), ("ravi", 403), ("ada", 403)):
        answer = hub.client(name).get(f"/api/v1/tasks/{task_id}")
        assert answer.status_code == status, name
    task = TASK_DETAIL.validate(json_of(hub.client("rita").get(f"/api/v1/tasks/{task_id}")))
    assert task["maker"] == "bruno" and task["state"] == "offered"
    detail = json_of(hub.client("rita").get(f"/api/v1/jobs/{job_id}"))
    assert detail["task_list"][0]["machine"] == "bruno/ender3-1"


def test_roles_are_enforced(hub: ApiHub) -> None:
    bruno = hub.client("bruno")  # maker only
    assert bruno.get("/api/v1/jobs").status_code == 403
    body = {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA"}
    assert bruno.post("/api/v1/jobs", json=body).status_code == 403
    assert hub.client("rita").get("/api/v1/machines").status_code == 403
    anonymous = hub.app.test_client()
    assert anonymous.get("/api/v1/jobs").status_code == 401
    wrong = hub.app.test_client()
    wrong.environ_base["HTTP_AUTHORIZATION"] = "Bearer fn_not-a-token"
    assert wrong.get("/api/v1/jobs").status_code == 401
    assert hub.client("boot").get("/api/v1/jobs").status_code == 200
