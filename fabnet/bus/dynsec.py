"""Mosquitto's dynamic-security plugin as fabnet uses it: the initial ``dynamic-security.json``
(the hub user is the plugin's admin and reads and writes ``fabnet/v1/#``), one role per agent
that keeps it inside its own subtree (DESIGN.md §3), and ``DynsecAdmin``, which adds, disables
and removes agents' broker accounts at run time over ``$CONTROL/dynamic-security/v1``.

Mosquitto 2.0.11's plugin does not substitute ``%u`` in ACL topics (measured: a role with
``fabnet/v1/agents/%u/#`` lets no agent publish anywhere), so each agent gets a role of its own,
``fabnet-agent-<id>``, whose topics name the agent.

Each agent's client is bound to the client id ``agent_client_id(agent)`` (the plugin's
``clientid``): the broker then refuses that username with any other client id, so no agent can
connect under another agent's or the hub's client id and take over its session (issue 13;
measured on 2.0.11: the log-in is refused "not authorised" and the holder stays connected).
The hub's own client is not bound: it also opens short admin connections with fresh ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import tls as bus_tls
from fabnet.bus.topics import PREFIX, agent_commands, check_id, hub_status
from fabnet.errors import DeviceError, InvalidInput, ToolMissing

log = logging.getLogger(__name__)

PLUGIN_FILE = "mosquitto_dynamic_security.so"
PLUGIN_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/arm-linux-gnueabihf",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/opt/homebrew/lib",
)
CONFIG_FILE = "dynamic-security.json"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ADMIN_ROLE = "fabnet-dynsec-admin"
HUB_ROLE = "fabnet-hub"
AGENT_ROLE_PREFIX = "fabnet-agent-"
PBKDF2_ITERATIONS = 101  # what mosquitto_ctrl writes
SALT_BYTES = 12
# Nothing is allowed that a role does not grant; unsubscribing is harmless.
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
ALREADY_EXISTS = "already exists"
NOT_FOUND = "not found"


def find_plugin(search_dirs: Sequence[str] = PLUGIN_DIRS) -> Path:
    """Path of ``mosquitto_dynamic_security.so``; raises ToolMissing saying how to get it."""
    for folder in search_dirs:
        candidate = Path(folder) / PLUGIN_FILE
        if candidate.is_file():
            return candidate
    raise ToolMissing(
        f"Mosquitto's dynamic-security plugin ({PLUGIN_FILE}) is not in {', '.join(search_dirs)}: "
        'install Mosquitto 2 (`apt-get install mosquitto`), or set [broker] accounts = "file" '
        "and use `fabnet broker-config` without --dynsec"
    )


def agent_client_id(agent: str) -> str:
    """The only client id the broker lets agent ``agent`` use: its username (as
    ``use_username_as_clientid`` makes it with a password file, so both modes agree)."""
    return check_id(agent, "agent")


def agent_role(agent: str) -> str:
    """The role that keeps agent ``agent`` inside ``fabnet/v1/agents/<agent>/``."""
    return AGENT_ROLE_PREFIX + check_id(agent, "agent")


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


def _read(topic: str) -> list[dict[str, Any]]:
    return [_acl("subscribePattern", topic), _acl("publishClientReceive", topic)]


def admin_acls() -> list[dict[str, Any]]:
    """Send commands to the plugin and read its answers, nothing else."""
    topic = "$CONTROL/dynamic-security/#"
    return [_acl("publishClientSend", topic), *_read(topic)]


def hub_acls() -> list[dict[str, Any]]:
    """Read and write all of ``fabnet/v1``, shared subscriptions included."""
    everything = f"{PREFIX}/#"
    return [
        _acl("publishClientSend", everything),
        *_read(everything),
        _acl("subscribePattern", f"$share/+/{everything}"),
    ]


def agent_acls(agent: str) -> list[dict[str, Any]]:
    """DESIGN.md §3: write under its own subtree, read its own commands and the hub status."""
    check_id(agent, "agent")
    return [
        _acl("publishClientSend", f"{PREFIX}/agents/{agent}/#"),
        *_read(agent_commands(agent)),
        *_read(hub_status()),
    ]


def client_entry(
    username: str,
    password: str,
    roles: Sequence[str],
    salt: bytes | None = None,
    clientid: str | None = None,
) -> dict[str, Any]:
    """A client of the plugin's JSON file: PBKDF2-HMAC-SHA512 of ``password``, base64;
    with ``clientid`` only that client id may log in as ``username``."""
    if not password:
        raise InvalidInput(f"broker password of {username!r} must not be empty")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    entry = {
        "username": check_id(username, "broker username"),
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": PBKDF2_ITERATIONS,
        "roles": [{"rolename": r} for r in roles],
    }
    return entry if clientid is None else {**entry, "clientid": clientid}


def initial_config(hub_user: str, hub_password: str, agents: Mapping[str, str]) -> dict[str, Any]:
    """The plugin's starting state: the hub (admin + hub role) and ``{agent: password}``."""
    if hub_user in agents:
        raise InvalidInput(f"agent {hub_user!r} has the hub's username")
    clients = [client_entry(hub_user, hub_password, [ADMIN_ROLE, HUB_ROLE])]
    roles = [
        {"rolename": ADMIN_ROLE, "acls": admin_acls()},
        {"rolename": HUB_ROLE, "acls": hub_acls()},
    ]
    for agent, password in sorted(agents.items()):
        role = [agent_role(agent)]
        clients.append(client_entry(agent, password, role, clientid=agent_client_id(agent)))
        roles.append({"rolename": agent_role(agent), "acls": agent_acls(agent)})
    return {"clients": clients, "groups": [], "roles": roles, "defaultACLAccess": DEFAULT_ACCESS}


def write_config(
    path: Path, hub_user: str, hub_password: str, agents: Mapping[str, str] | None = None
) -> Path:
    """Write the initial ``dynamic-security.json`` (owner-only: it holds password hashes).
    The broker rewrites this file itself after every change made over ``$CONTROL``."""
    text = json.dumps(initial_config(hub_user, hub_password, agents or {}), indent=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    os.replace(tmp, path)
    return path


def conf_lines(config_file: Path, plugin: Path | None = None) -> list[str]:
    """mosquitto.conf lines that load the plugin with ``config_file`` as its state."""
    plugin = plugin or find_plugin()
    return [f"plugin {plugin}", f"plugin_opt_config_file {Path(config_file).resolve()}"]


class DynsecAdmin:
    """Commands to the plugin over a short-lived admin connection, answers matched by
    ``correlationData`` (several admins may share the response topic). Every method raises
    DeviceError naming the broker and the problem: unreachable, refused log-in, not the
    plugin's admin, no answer in ``timeout_s``, or the plugin's own error for a command."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        tls: bool = False,
        ca_file: Path | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self._login = (username, password)
        self.tls, self.ca_file = tls, ca_file
        self.timeout_s = timeout_s

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def run(self, commands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; their responses, in the same order."""
        tag = secrets.token_hex(8)
        tagged = [{**c, "correlationData": f"{tag}-{i}"} for i, c in enumerate(commands)]
        exchange = _Exchange({c["correlationData"] for c in tagged})
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fabnet-dynsec-{tag}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(*self._login)
        if self.tls:
            bus_tls.configure_client(client, self.ca_file)
        exchange.attach(client, json.dumps({"commands": tagged}))
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise DeviceError(
                f"broker {self.where}: {bus_tls.explain(exc, self.host, self.ca_file)}"
            ) from None
        client.loop_start()
        try:
            finished = exchange.done.wait(self.timeout_s)
        finally:
            client.disconnect()
            client.loop_stop()
        if exchange.error:
            raise DeviceError(f"broker {self.where}: {exchange.error}")
        if not finished:
            raise DeviceError(
                f"broker {self.where}: no answer from the dynamic-security plugin within "
                f"{self.timeout_s:g} s (is the plugin loaded in mosquitto.conf?)"
            )
        return [exchange.responses[c["correlationData"]] for c in tagged]

    def _check(self, response: Mapping[str, Any], what: str, tolerate: str = "") -> bool:
        """True if ``response`` succeeded, False if it failed with ``tolerate`` in its error;
        raises DeviceError otherwise."""
        error = response.get("error")
        if not error:
            return True
        if tolerate and tolerate in str(error).lower():
            return False
        raise DeviceError(f"broker {self.where} refused {response.get('command')} {what}: {error}")

    def create_agent(self, agent: str, password: str) -> None:
        """A client for ``agent`` with its own role. An existing role (left by an earlier
        attempt) is reused; an existing client is an error — its password is never replaced."""
        role = agent_role(agent)
        made_role, made_client = self.run(
            [
                {"command": "createRole", "rolename": role, "acls": agent_acls(agent)},
                {"command": "createClient", "username": agent, "password": password,
                 "clientid": agent_client_id(agent), "roles": [{"rolename": role}]},
            ]
        )  # fmt: skip
        role_is_new = self._check(made_role, f"role {role!r}", tolerate=ALREADY_EXISTS)
        try:
            self._check(made_client, f"for agent {agent!r}")
        except DeviceError:
            if role_is_new:
                self.run([{"command": "deleteRole", "rolename": role}])
            raise
        log.info("broker %s: agent %s created", self.where, agent)

    def set_password(self, agent: str, password: str) -> None:
        """Give ``agent`` a new password and bind its client id (clients made before the
        binding get it here); creates its client (and role) if the broker has none."""
        answer, _bound = self.run(
            [
                {"command": "setClientPassword", "username": agent, "password": password},
                {"command": "setClientId", "username": agent, "clientid": agent_client_id(agent)},
            ]
        )
        if not self._check(answer, f"for agent {agent!r}", tolerate=NOT_FOUND):
            self.create_agent(agent, password)

    def bind_client_id(self, agent: str) -> None:
        """Let ``agent`` log in only as ``agent_client_id(agent)`` (for clients made before
        fabnet bound them)."""
        cid = agent_client_id(agent)
        (answer,) = self.run([{"command": "setClientId", "username": agent, "clientid": cid}])
        self._check(answer, f"for agent {agent!r}")

    def disable(self, agent: str) -> None:
        """Disconnect ``agent`` now and refuse its log-ins until ``enable``."""
        (answer,) = self.run([{"command": "disableClient", "username": agent}])
        self._check(answer, f"for agent {agent!r}")

    def enable(self, agent: str) -> None:
        """Let ``agent`` log in again."""
        (answer,) = self.run([{"command": "enableClient", "username": agent}])
        self._check(answer, f"for agent {agent!r}")

    def delete_agent(self, agent: str) -> None:
        """Remove ``agent``'s client (it is disconnected) and its role; absent ones are fine."""
        client, role = self.run(
            [
                {"command": "deleteClient", "username": agent},
                {"command": "deleteRole", "rolename": agent_role(agent)},
            ]
        )
        self._check(client, f"for agent {agent!r}", tolerate=NOT_FOUND)
        self._check(role, f"role {agent_role(agent)!r}", tolerate=NOT_FOUND)

    def get_client(self, username: str) -> dict[str, Any] | None:
        """The plugin's record of ``username`` (roles, ``disabled``), None if it has none."""
        (answer,) = self.run([{"command": "getClient", "username": username}])
        if not self._check(answer, f"for {username!r}", tolerate=NOT_FOUND):
            return None
        client: dict[str, Any] = answer.get("data", {}).get("client", {})
        return client

    def list_clients(self) -> list[str]:
        """Every username the plugin knows."""
        (answer,) = self.run([{"command": "listClients", "verbose": False, "count": -1}])
        self._check(answer, "")
        return [str(c) for c in answer.get("data", {}).get("clients", [])]


class _Exchange:
    """One request/response round on paho's loop thread: subscribe to the response topic,
    publish the commands once subscribed, collect the answers carrying our correlation data."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.responses: dict[str, dict[str, Any]] = {}
        self.error: str | None = None
        self.done = threading.Event()
        self._payload = ""

    def attach(self, client: mqtt.Client, payload: str) -> None:
        self._payload = payload
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def _fail(self, error: str) -> None:
        self.error = error
        self.done.set()

    def _on_connect(self, client: mqtt.Client, u: Any, flags: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            self._fail(f"refused the admin log-in: {rc}")
        else:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            self._fail(f"may not read {RESPONSE_TOPIC}: the hub user is not the plugin's admin")
        else:
            client.publish(CONTROL_TOPIC, self._payload, qos=1)

    def _on_publish(self, client: mqtt.Client, u: Any, mid: int, rc: Any, p: Any) -> None:
        if rc.is_failure:
            self._fail(f"refused the command ({rc}): the hub user is not the plugin's admin")

    def _on_message(self, client: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            answers = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable dynamic-security response: %.200r", message.payload)
            return
        for answer in answers if isinstance(answers, list) else []:
            tag = answer.get("correlationData") if isinstance(answer, dict) else None
            if tag in self.wanted:
                self.responses[tag] = answer
        if self.wanted <= self.responses.keys():
            self.done.set()
