"""Registration is all or nothing (issue 13, item 7): a driver option that is not a bare TOML
key, or that the driver does not know, is a 400 before any machine or broker account exists
(dynamic security on a real Mosquitto, and the password file); the password file keeps the
accounts ``fabnet broker-config`` made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiHub, api_hub, json_of

from fabnet.bus.broker import DYNSEC, MosquittoBroker
from fabnet.bus.mosquitto_conf import password_hash
from fabnet.errors import NotFound
from fabnet.web.api.context import ApiContext, BrokerSettings

HUB_PASSWORD = "hub-secret-for-dynsec-1"
BODY = {"agent": "ada", "machine": "mini-1", "profile": "prusa_mini", "material": "PLA"}
BAD_OPTIONS = [
    {'x"]\n[agent]\nid = "evil': 1},  # not a bare key: would have broken agent.toml (500)
    {"a b": 1},
    {"no_such_option": 1},  # the sim driver has no such option
]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker", users={"hub": HUB_PASSWORD}, accounts=DYNSEC) as b:
        yield b


def with_broker(hub: ApiHub, settings: BrokerSettings) -> ApiHub:
    ctx: ApiContext = hub.app.extensions["fabnet_api_context"]
    ctx.broker = settings
    return hub


def register(hub: ApiHub, **change: Any) -> Any:
    return hub.client("ada").post("/api/v1/machines", json={**BODY, **change})


def nothing_stored(hub: ApiHub) -> bool:
    store = hub.app.extensions["fabnet_api_context"].store
    try:
        store.catalog.get_machine("ada/mini-1")
    except NotFound:
        return "ada" not in store.accounts.broker_hashes()
    return False


@pytest.mark.parametrize("options", BAD_OPTIONS)
def test_bad_driver_options_store_nothing_with_dynsec(
    tmp_path: Path, broker: MosquittoBroker, options: dict[str, int]
) -> None:
    with api_hub(tmp_path) as hub:
        with_broker(hub, BrokerSettings(broker.url, "hub", HUB_PASSWORD, accounts=DYNSEC))
        answer = register(hub, driver_options=options)
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert "driver" in json_of(answer)["message"]
        assert nothing_stored(hub)
        assert broker.admin().get_client("ada") is None
        good = register(hub)
        assert good.status_code == 201, good.get_data(as_text=True)


def test_password_file_keeps_broker_config_accounts(tmp_path: Path) -> None:
    passwd = tmp_path / "broker" / "passwd"
    passwd.parent.mkdir()
    passwd.write_text(f"zed:{password_hash('zed-password')}\n")
    settings = BrokerSettings(
        "mqtt://127.0.0.1:1883", "hub", HUB_PASSWORD, password_file=passwd, accounts="file"
    )
    with api_hub(tmp_path / "hub") as hub:
        with_broker(hub, settings)
        answer = register(hub, driver_options={"a b": 1})
        assert answer.status_code == 400 and nothing_stored(hub)
        assert register(hub).status_code == 201
        users = {line.split(":")[0] for line in passwd.read_text().splitlines()}
        assert users == {"zed", "ada", "hub"}
        deleted = hub.client("ada").delete("/api/v1/makers/ada/broker-account")
        assert deleted.status_code == 200, deleted.get_data(as_text=True)
        users = {line.split(":")[0] for line in passwd.read_text().splitlines()}
        assert users == {"zed", "hub"}
        assert passwd.stat().st_mode & 0o077 == 0
