"""Registering machines against a real Mosquitto with the dynamic-security plugin: the hub
creates the agent's broker account at run time, keeps an existing password and says so, resets,
disables, enables and deletes it on request, and stores nothing when the broker refuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from api_support import ApiHub, api_hub, json_of
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus.broker import DYNSEC, MosquittoBroker, check_login, free_port
from fabnet.errors import NotFound
from fabnet.web.api.broker_account_routes import ACCOUNT_STATE, BROKER_PASSWORD
from fabnet.web.api.context import ApiContext, BrokerSettings
from fabnet.web.api.machines import REGISTERED

HUB_PASSWORD = "hub-secret-for-dynsec-1"
BODY = {"agent": "ada", "machine": "mini-1", "profile": "prusa_mini", "material": "PLA"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    users = {"hub": HUB_PASSWORD}
    with MosquittoBroker(tmp_path / "broker", users=users, accounts=DYNSEC) as running:
        yield running


def use_broker(hub: ApiHub, settings: BrokerSettings) -> None:
    """Point the running app's registrations at ``settings`` (the API reads it per request)."""
    ctx: ApiContext = hub.app.extensions["fabnet_api_context"]
    ctx.broker = settings


@pytest.fixture
def hub(tmp_path: Path, broker: MosquittoBroker) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        use_broker(h, BrokerSettings(broker.url, "hub", HUB_PASSWORD, accounts=DYNSEC))
        yield h


def can_log_in(broker: MosquittoBroker, user: str, password: str) -> bool:
    return check_login(broker.host, broker.port, user, password)


def register(hub: ApiHub, user: str = "ada", **change: Any) -> Any:
    return hub.client(user).post("/api/v1/machines", json={**BODY, **change})


def test_registration_creates_the_account_and_keeps_it_for_the_next_machine(
    hub: ApiHub, broker: MosquittoBroker
) -> None:
    first = register(hub)
    assert first.status_code == 201, first.get_data(as_text=True)
    done = REGISTERED.validate(json_of(first))
    password = done["broker"]["password"]
    assert password and "the broker accepts it now" in done["note"]
    assert not done["password_file_written"]
    assert can_log_in(broker, "ada", password)
    second = REGISTERED.validate(json_of(register(hub, machine="mini-2")))
    assert second["broker"]["password"] is None
    assert "already has a broker password: it is kept" in second["note"]
    assert "<unchanged" in second["config_toml"]
    assert can_log_in(broker, "ada", password), "the first password still works"
    assert broker.admin().get_client("ada") is not None


def test_reset_issues_a_new_password(hub: ApiHub, broker: MosquittoBroker) -> None:
    old = json_of(register(hub))["broker"]["password"]
    assert hub.client("bruno").post("/api/v1/makers/ada/broker-password").status_code == 403
    answer = hub.client("ada").post("/api/v1/makers/ada/broker-password")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    new = BROKER_PASSWORD.validate(json_of(answer))["password"]
    assert new != old and can_log_in(broker, "ada", new) and not can_log_in(broker, "ada", old)
    assert hub.client("bruno").post("/api/v1/makers/bruno/broker-password").status_code == 404


def test_disable_disconnects_and_enable_lets_back_in(hub: ApiHub, broker: MosquittoBroker) -> None:
    password = json_of(register(hub))["broker"]["password"]
    gone = threading.Event()
    agent = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="ada", protocol=MQTTProtocolVersion.MQTTv5
    )
    agent.username_pw_set("ada", password)
    agent.on_disconnect = lambda *args: gone.set()
    agent.connect(broker.host, broker.port)
    agent.loop_start()
    try:
        assert hub.client("bruno").post("/api/v1/makers/ada/disable").status_code == 403
        answer = hub.client("ada").post("/api/v1/makers/ada/disable")
        assert ACCOUNT_STATE.validate(json_of(answer))["broker_account"] == "disabled"
        assert gone.wait(5), "the disabled agent was not disconnected"
    finally:
        agent.disconnect()
        agent.loop_stop()
    assert not can_log_in(broker, "ada", password)
    assert json_of(hub.client("olga").post("/api/v1/makers/ada/enable"))["broker_account"] == (
        "enabled"
    )
    assert can_log_in(broker, "ada", password)


def test_delete_removes_the_account(hub: ApiHub, broker: MosquittoBroker) -> None:
    password = json_of(register(hub))["broker"]["password"]
    answer = hub.client("ada").delete("/api/v1/makers/ada/broker-account")
    assert json_of(answer)["broker_account"] == "deleted"
    assert not can_log_in(broker, "ada", password)
    assert "ada" not in hub.store.accounts.broker_hashes()
    assert hub.client("ada").delete("/api/v1/makers/ada/broker-account").status_code == 404
    again = json_of(register(hub, machine="mini-2"))["broker"]["password"]
    assert again and can_log_in(broker, "ada", again)


def test_a_broker_failure_stores_nothing(hub: ApiHub, broker: MosquittoBroker) -> None:
    ctx: ApiContext = hub.app.extensions["fabnet_api_context"]
    working = ctx.broker
    use_broker(hub, replace(working, url=f"mqtt://127.0.0.1:{free_port()}", admin_timeout_s=3))
    answer = register(hub)
    assert answer.status_code == 502
    assert "cannot connect to the broker" in json_of(answer)["message"]
    broker.admin().create_agent("ada", "set-up-by-hand")  # the broker has an ada already
    use_broker(hub, working)
    answer = register(hub)
    assert answer.status_code == 502 and "Client already exists" in json_of(answer)["message"]
    with pytest.raises(NotFound):
        hub.store.catalog.get_machine("ada/mini-1")
    assert "ada" not in hub.store.accounts.broker_hashes()
    assert can_log_in(broker, "ada", "set-up-by-hand"), "the broker's own account is untouched"


def test_without_dynsec_disable_is_refused_and_none_only_records(hub: ApiHub) -> None:
    use_broker(hub, BrokerSettings("mqtt://broker.example:1883", accounts="none"))
    done = json_of(register(hub))
    assert done["broker"]["password"] and "recorded only" in done["note"]
    answer = hub.client("ada").post("/api/v1/makers/ada/disable")
    assert answer.status_code == 409 and 'accounts = "dynsec"' in json_of(answer)["message"]
