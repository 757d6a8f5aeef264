"""Machines, makers and offers through the API: ownership, registration (agent config and
broker credentials), recorded changes, and a maker's accept/decline applied by the hub."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.config import load_agent_config
from fabnet.web.api.machines import MACHINE, MACHINE_DETAIL, REGISTERED
from fabnet.web.api.offers import DECIDED, OFFER


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def test_makers_see_only_their_machines(hub: ApiHub) -> None:
    ada = json_of(hub.client("ada").get("/api/v1/machines"))
    assert [MACHINE.validate(m)["id"] for m in ada] == ["ada/mk3s-1"]
    assert len(json_of(hub.client("olga").get("/api/v1/machines"))) == 2
    assert hub.client("ada").get("/api/v1/machines/bruno/ender3-1").status_code == 403
    assert hub.client("ada").get("/api/v1/machines?maker=bruno").status_code == 403
    detail = MACHINE_DETAIL.validate(json_of(hub.client("ada").get("/api/v1/machines/ada/mk3s-1")))
    assert detail["policy"]["auto_accept"] is True
    makers = json_of(hub.client("bruno").get("/api/v1/makers"))
    assert [m["id"] for m in makers] == ["bruno"] and makers[0]["machines"] == 1
    assert len(json_of(hub.client("olga").get("/api/v1/makers"))) == 2


def test_register_returns_agent_config_and_broker_credentials(hub: ApiHub, tmp_path: Path) -> None:
    body = {"agent": "ada", "machine": "mini-1", "profile": "prusa_mini", "material": "PETG",
            "policy": {"auto_accept": False, "max_task_hours": 6}}  # fmt: skip
    answer = hub.client("ada").post("/api/v1/machines", json=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    done = REGISTERED.validate(json_of(answer))
    password = done["broker"]["password"]
    assert done["machine_id"] == "ada/mini-1" and password and done["password_file_written"]
    config_file = tmp_path / "agent-ada.toml"
    config_file.write_text(done["config_toml"])
    config = load_agent_config(config_file)
    assert config.agent_id == "ada" and config.broker.password == password
    assert config.broker.host == "broker.example" and config.hub_url == "http://hub.example:5000"
    (machine,) = config.machines
    assert (machine.profile, machine.material, machine.policy.auto_accept) == (
        "prusa_mini",
        "PETG",
        False,
    )
    assert machine.policy.materials == ("PETG",)
    lines = (tmp_path / "broker" / "passwd").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["ada", "hub"]
    assert password not in "".join(lines) and lines[0].split(":")[1].startswith("$7$")
    listed = json_of(hub.client("ada").get("/api/v1/machines?state=offline"))
    assert [m["id"] for m in listed] == ["ada/mini-1"]
    again = hub.client("ada").post("/api/v1/machines", json=body)
    assert again.status_code == 409 and "already registered" in json_of(again)["message"]
    second = hub.client("ada").post("/api/v1/machines", json={**body, "machine": "mini-2"})
    assert json_of(second)["broker"]["password"] is None  # the agent keeps its password


def test_register_refuses_foreign_agents_and_bad_input(hub: ApiHub) -> None:
    body = {"agent": "bruno", "machine": "x", "profile": "prusa_mini", "material": "PLA"}
    assert hub.client("ada").post("/api/v1/machines", json=body).status_code == 403
    for change, needle in (
        ({"agent": "ada", "profile": "no_such"}, "profile must be one of"),
        ({"agent": "ada", "profile": "../../etc/passwd"}, "profile must be one of"),
        ({"agent": "ada", "machine": "a b"}, "machine must be 1-64"),
        ({"agent": "ada", "driver": "teleport"}, "driver must be one of"),
        ({"agent": "ada", "policy": {"max_task_hours": 0}}, "policy.max_task_hours must be"),
    ):
        answer = hub.client("ada").post("/api/v1/machines", json={**body, **change})
        assert answer.status_code == 400 and needle in json_of(answer)["message"], change


def test_policy_change_is_recorded_not_pushed(hub: ApiHub) -> None:
    ada = hub.client("ada")
    answer = ada.put("/api/v1/machines/ada/mk3s-1", json={"materials": ["PETG"]})
    data = json_of(answer)
    assert answer.status_code == 200 and data["recorded"] and not data["pushed"]
    assert "not pushed" in data["note"]
    detail = json_of(ada.get("/api/v1/machines/ada/mk3s-1"))
    assert detail["changes"][0]["change"] == {"materials": ["PETG"]}
    assert (
        ada.put("/api/v1/machines/bruno/ender3-1", json={"materials": ["PLA"]}).status_code == 403
    )
    assert ada.put("/api/v1/machines/ada/mk3s-1", json={}).status_code == 400


def _wait_state(hub: ApiHub, task_id: str, state: str) -> None:
    deadline = time.monotonic() + 10
    while hub.store.tasks.get(task_id).state.value != state:
        assert time.monotonic() < deadline, f"task {task_id} never reached {state}"
        time.sleep(0.05)


def test_maker_accepts_and_declines_offers(hub: ApiHub) -> None:
    first = hub.offer(hub.job("rita"), "bruno/ender3-1")
    second = hub.offer(hub.job("rita"), "bruno/ender3-1")
    bruno = hub.client("bruno")
    offers = [OFFER.validate(o) for o in json_of(bruno.get("/api/v1/offers"))]
    assert {o["task_id"] for o in offers} == {first, second}
    assert json_of(hub.client("ada").get("/api/v1/offers")) == []
    assert hub.client("ada").post(f"/api/v1/offers/{first}/accept").status_code == 403
    accepted = DECIDED.validate(json_of(bruno.post(f"/api/v1/offers/{first}/accept")))
    assert accepted["decision"] == "accepted" and accepted["task"]["state"] in (
        "claimed",
        "preparing",
    )
    again = bruno.post(f"/api/v1/offers/{first}/accept")
    assert again.status_code == 409 and "not offered" in json_of(again)["message"]
    declined = json_of(
        bruno.post(f"/api/v1/offers/{second}/decline", json={"reason": "out of PLA"})
    )
    assert declined["task"]["state"] == "queued"
    attempts = hub.store.tasks.get(second).attempts
    assert attempts == () or "out of PLA" in attempts[-1].detail
    assert json_of(bruno.get("/api/v1/offers")) == []


def test_auto_accept_machines_have_no_decisions(hub: ApiHub) -> None:
    task = hub.offer(hub.job("rita"), "ada/mk3s-1")
    answer = hub.client("ada").post(f"/api/v1/offers/{task}/accept")
    assert answer.status_code == 409 and "auto_accept" in json_of(answer)["message"]
