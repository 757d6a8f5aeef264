"""``fabnet machines register``: a maker registers the machines of their agent.toml with a hub
served over real HTTP and a broker with dynamic security; the password the hub issues lands in
[broker] password with the rest of the file untouched, and the agent can log in with it."""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub
from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from fabnet.agent.cli import EXAMPLE_AGENT_TOML
from fabnet.bus.broker import DYNSEC, MosquittoBroker, check_login
from fabnet.config import load_agent_config
from fabnet.errors import InvalidInput
from fabnet.hub.machines_cli import machines, set_broker_password
from fabnet.web.api.context import BrokerSettings

HUB_PASSWORD = "hub-secret-for-dynsec-1"
SECOND = """
[[machines]]
id = "mini-2"   # the second printer
profile = "prusa_mini"
driver = "sim"
material = "PETG"
[machines.policy]
materials = ["PETG"]
"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    users = {"hub": HUB_PASSWORD}
    with MosquittoBroker(tmp_path / "broker", users=users, accounts=DYNSEC) as running:
        yield running


@pytest.fixture
def hub(tmp_path: Path, broker: MosquittoBroker) -> Iterator[tuple[ApiHub, str]]:
    with api_hub(tmp_path) as h:
        ctx = h.app.extensions["fabnet_api_context"]
        ctx.broker = BrokerSettings(broker.url, "hub", HUB_PASSWORD, accounts=DYNSEC)
        server = make_server("127.0.0.1", 0, h.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield h, f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()


def agent_toml(folder: Path, broker: MosquittoBroker) -> Path:
    text = (
        EXAMPLE_AGENT_TOML.replace('"alice"', '"ada"')
        .replace("mqtt://127.0.0.1:1883", broker.url)
        .replace('id = "mk3s-1"', 'id = "mk4-1"')  # the hub fixture has an ada/mk3s-1
    )
    path = folder / "agent.toml"
    path.write_text(text + SECOND)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(machines, list(args), catch_exceptions=False)


def test_register_writes_the_password_and_skips_known_machines(
    hub: tuple[ApiHub, str], broker: MosquittoBroker, tmp_path: Path
) -> None:
    api, url = hub
    path = agent_toml(tmp_path, broker)
    before = path.read_text().splitlines()
    token = api.tokens["ada"]
    result = run("register", "--config", str(path), "--hub", url, "--token", token)
    assert result.exit_code == 0, result.output
    assert "ada/mk4-1: registered" in result.output and "ada/mini-2: registered" in result.output
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    ((old_line, new_line),) = changed  # only the password's value, its comment kept
    assert new_line.startswith("password = ") and "#" in old_line
    assert new_line.split("#", 1)[1] == old_line.split("#", 1)[1]
    password = load_agent_config(path).broker.password
    assert check_login(broker.host, broker.port, "ada", password)
    assert path.stat().st_mode & 0o077 == 0

    again = run("register", "--config", str(path), "--hub", url, "--token", token)
    assert again.exit_code == 0, again.output
    assert again.output.count("skipped") == 2 and "already registered" in again.output
    assert load_agent_config(path).broker.password == password

    reset = run("register", "--config", str(path), "--hub", url, "--token", token,
                "--reset-password")  # fmt: skip
    assert reset.exit_code == 0, reset.output
    new = load_agent_config(path).broker.password
    assert new != password and check_login(broker.host, broker.port, "ada", new)
    assert not check_login(broker.host, broker.port, "ada", password)

    listed = run("list", "--hub", url, "--token", token)
    assert "ada/mini-2" in listed.output and "ada/mk4-1" in listed.output
    assert "bruno" not in listed.output


def test_a_kept_password_the_file_lacks_is_an_error(
    hub: tuple[ApiHub, str], broker: MosquittoBroker, tmp_path: Path
) -> None:
    api, url = hub
    first = agent_toml(tmp_path, broker)
    assert run("register", "--config", str(first), "--hub", url, "--token", api.tokens["ada"])
    other = tmp_path / "other"
    other.mkdir()
    fresh = agent_toml(other, broker)
    fresh.write_text(fresh.read_text().replace('id = "mini-2"', 'id = "mini-3"'))
    result = CliRunner().invoke(
        machines, ["register", "--config", str(fresh), "--hub", url, "--token", api.tokens["ada"]]
    )
    assert result.exit_code != 0 and "--reset-password" in result.output


def test_set_broker_password_edits_one_value(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        "[agent]\nid = 'x'  # me\n\n[broker]\nurl = 'mqtt://h'\n\n[[machines]]\nid = 'm'\n"
    )
    set_broker_password(path, 'p"w\\1')
    text = path.read_text()
    assert tomllib.loads(text)["broker"]["password"] == 'p"w\\1' and "id = 'x'  # me" in text
    set_broker_password(path, "second")
    assert tomllib.loads(path.read_text())["broker"]["password"] == "second"
    bare = tmp_path / "b.toml"
    bare.write_text("[agent]\nid = 'x'\n")
    set_broker_password(bare, "third")
    assert tomllib.loads(bare.read_text())["broker"] == {"password": "third"}
    odd = tmp_path / "c.toml"
    odd.write_text('[broker]\npassword = """\nmulti"""\n')
    with pytest.raises(InvalidInput, match=r"\[broker\] password"):
        set_broker_password(odd, "x")
