"""Registering a machine: the agent config TOML a maker runs, an offline machine row so the
machine shows up before its agent first reports, and the agent's broker account — created in
the broker first (dynamic security: over ``$CONTROL``, no file, no signal), then recorded as a
Mosquitto ``$7$`` hash, so a broker failure stores nothing. ``AgentAccounts`` also resets,
disables, enables and deletes an agent's account."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fabnet.bus.broker import password_hash
from fabnet.bus.topics import check_id
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState
from fabnet.drivers.registry import check_driver_options
from fabnet.errors import Conflict, DeviceError, InvalidInput, NotFound
from fabnet.hub.machines import hub_machine_id
from fabnet.profiles import CncProfile, list_profiles, load_profile
from fabnet.profiles.canonical import canonical_material, canonical_profile
from fabnet.store import Store
from fabnet.web.api.context import (
    ACCOUNTS_DYNSEC,
    ACCOUNTS_FILE,
    ApiContext,
    BrokerSettings,
    forbid,
)
from fabnet.web.auth import MAKER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, Schema

log = logging.getLogger(__name__)

PASSWORD_BYTES = 18
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a TOML bare key: written into agent.toml as is
KEPT = (
    "agent {agent} already has a broker password: it is kept (the one in its agent.toml); "
    "POST /api/v1/makers/{agent}/broker-password issues a new one"
)
ISSUED = {
    ACCOUNTS_DYNSEC: "new broker password for agent {agent}, shown once; the broker accepts it now",
    ACCOUNTS_FILE: "new broker password for agent {agent}, shown once; written to the broker's "
    "password file, which Mosquitto reads on SIGHUP",
    "unwritten": "new broker password for agent {agent}, shown once; recorded only: this hub "
    "writes no broker accounts, so the operator must add it to the broker",
}


@dataclass(frozen=True)
class Registration:
    machine_id: str
    agent: str
    password: str | None  # None: the agent already had one (kept)
    config_toml: str
    password_file: Path | None
    note: str


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text)


def agent_toml(
    body: dict[str, Any], broker: BrokerSettings, hub_url: str, password: str | None
) -> str:
    """The agent config for one machine, readable by ``fabnet.config.load_agent_config``."""
    policy = body["policy"]
    secret = _q(password) if password else '"<unchanged: the password you were given first>"'
    lines = [
        "[agent]",
        f"id = {_q(body['agent'])}",
        f"hub_url = {_q(hub_url)}",
        f"data_dir = {_q('var/agent-' + body['agent'])}",
        "",
        "[broker]",
        f"url = {_q(broker.url)}",
        f"username = {_q(body['agent'])}",
        f"password = {secret}",
    ]
    if broker.url.startswith("mqtts://"):
        lines.append('# ca_file = "ca.crt"   # the CA file the hub operator gives you, if any')
    lines += [
        "",
        "[[machines]]",
        f"id = {_q(body['machine'])}",
        f"profile = {_q(body['profile'])}",
        f"driver = {_q(body['driver'])}",
        f"material = {_q(body['material'])}",
        "",
        "[machines.policy]",
        f"materials = [{', '.join(_q(m) for m in policy['materials'])}]",
        f"max_task_hours = {float(policy['max_task_hours'])!r}",
        f"auto_accept = {'true' if policy['auto_accept'] else 'false'}",
        f"windows = [{', '.join(_q(w) for w in policy['windows'])}]",
    ]
    options = body["driver_options"] or {}
    if options:
        lines += ["", "[machines.driver_options]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in sorted(options.items())]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we hand out must parse
    return text


def _driver_options(body: dict[str, Any]) -> dict[str, Any]:
    """``driver_options`` checked before anything is stored (issue 13): bare TOML keys (they
    are written into agent.toml unquoted) that the driver knows, with values of its types.
    Raises InvalidInput naming the key or the option and its value."""
    options = body.get("driver_options") or {}
    if not isinstance(options, dict):
        raise InvalidInput(f"driver_options must be an object, got {options!r:.80}")
    for key in options:
        if not isinstance(key, str) or not BARE_KEY.fullmatch(key):
            raise InvalidInput(
                f"driver_options keys must be letters, digits, _ or -, got {key!r:.80}"
            )
    return check_driver_options(str(body["driver"]), options)


def _offline_machine(body: dict[str, Any], machine_id: str) -> Machine:
    if body["profile"] not in list_profiles():
        raise InvalidInput(
            f"profile must be one of {', '.join(list_profiles())}, got {body['profile']!r}"
        )
    profile = load_profile(body["profile"])
    nozzle = profile.tool().diameter_mm if isinstance(profile, CncProfile) else profile.nozzle_mm
    policy = body["policy"]
    return Machine(
        machine_id=machine_id,
        maker_id=body["agent"],
        kind=MachineKind(profile.kind.value),
        volume_mm=(profile.volume.x_mm, profile.volume.y_mm, profile.volume.z_mm),
        nozzle_mm=nozzle,
        materials=frozenset({body["material"]}),
        policy=MachinePolicy(
            materials_accepted=frozenset(policy["materials"]),
            max_task_hours=policy["max_task_hours"],
            auto_accept=policy["auto_accept"],
        ),
        state=MachineState.OFFLINE,
        profile=body["profile"],
        driver=body["driver"],
        name=body["machine"],
    )


def _read_password_file(path: Path) -> dict[str, str]:
    """``{user: hash}`` of an existing Mosquitto password file ({} if there is none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))
    return {user: digest for user, digest in pairs}


def write_password_file(
    store: Store, broker: BrokerSettings, removed: Collection[str] = ()
) -> Path | None:
    """Update Mosquitto's password file: the hub's user and every recorded agent, merged into
    what the file holds already, so accounts made with ``fabnet broker-config`` stay (issue
    13); ``removed`` users are taken out.

    ``fabnet.bus.broker.write_password_file`` needs every password in clear; the hub keeps
    only hashes, so the recorded ``$7$`` lines are written as they are.
    """
    if broker.password_file is None:
        return None
    kept = _read_password_file(broker.password_file)
    entries = {user: digest for user, digest in kept.items() if user not in removed}
    entries.update(store.accounts.broker_hashes())
    if broker.hub_password:
        entries[broker.hub_user] = password_hash(broker.hub_password)
    text = "".join(f"{user}:{digest}\n" for user, digest in sorted(entries.items()))
    path = broker.password_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)  # Mosquitto reads it on SIGHUP
    return path


class AgentAccounts:
    """Agents' broker accounts: a ``$7$`` hash in the store and, as ``broker.accounts`` says,
    a client in the dynamic-security plugin or a line in the password file. The broker is
    changed first: when it refuses (DeviceError, HTTP 502) the store is left as it was."""

    def __init__(self, store: Store, broker: BrokerSettings) -> None:
        self.store, self.broker = store, broker
        self.dynsec = broker.accounts == ACCOUNTS_DYNSEC
        self.file = broker.accounts == ACCOUNTS_FILE and broker.password_file is not None

    def exists(self, agent: str) -> bool:
        return agent in self.store.accounts.broker_hashes()

    def _known(self, agent: str) -> str:
        check_id(agent, "agent")
        if not self.exists(agent):
            raise NotFound(f"agent {agent} has no broker account (register a machine first)")
        return agent

    def issued_note(self, agent: str) -> str:
        mode = "unwritten" if not (self.dynsec or self.file) else self.broker.accounts
        return ISSUED[mode].format(agent=agent)

    def create(self, agent: str, user_id: str | None, now: datetime) -> str:
        """A new account; its password (shown once). Raises DeviceError if the broker refuses,
        Conflict if another registration gave ``agent`` an account meanwhile."""
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        if self.dynsec:
            self.broker.admin().create_agent(agent, password)
        added = done = False
        try:
            added = self.store.accounts.add_broker_account(
                agent, password_hash(password), user_id, now
            )
            if not added:
                raise Conflict(f"agent {agent} was given a broker account meanwhile")
            if self.file:
                write_password_file(self.store, self.broker)
            done = True
        finally:
            if not done:
                self._undo_create(agent, added)
        return password

    def _undo_create(self, agent: str, added: bool) -> None:
        if added:
            self.store.accounts.remove_broker_account(agent)
        if self.dynsec:
            try:
                self.broker.admin().delete_agent(agent)
            except DeviceError:
                log.exception("agent %s: could not take back its new broker account", agent)

    def reset(self, agent: str) -> str:
        """A new password for ``agent`` (the old one stops working); returns it."""
        self._known(agent)
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        if self.dynsec:
            self.broker.admin().set_password(agent, password)
        self.store.accounts.set_broker_hash(agent, password_hash(password))
        if self.file:
            write_password_file(self.store, self.broker)
        return password

    def set_enabled(self, agent: str, enabled: bool) -> None:
        """Disable (disconnects it now, refuses its log-ins) or enable ``agent``'s account."""
        self._known(agent)
        if not self.dynsec:
            raise Conflict(
                f'disabling or enabling an agent needs [broker] accounts = "dynsec"; this hub '
                f"has {self.broker.accounts!r} (delete the account instead)"
            )
        admin = self.broker.admin()
        if enabled:
            admin.enable(agent)
        else:
            admin.disable(agent)

    def delete(self, agent: str) -> None:
        """Remove ``agent``'s account: from the broker (it is disconnected) and the store."""
        self._known(agent)
        if self.dynsec:
            self.broker.admin().delete_agent(agent)
        self.store.accounts.remove_broker_account(agent)
        if self.file:
            write_password_file(self.store, self.broker, removed=(agent,))


def register_machine(
    store: Store,
    body: dict[str, Any],
    user_id: str | None,
    broker: BrokerSettings,
    hub_url: str,
    now: datetime,
) -> Registration:
    """Record the machine, its agent's maker row and broker account (a new one only if the
    agent has none: an existing password is kept and the note says so). Raises InvalidInput
    (ids, profile), Conflict (machine already registered) or DeviceError (the broker refused
    the new account; then nothing is stored)."""
    agent = check_id(body["agent"], "agent")
    machine_name = check_id(body["machine"], "machine")
    machine_id = hub_machine_id(agent, machine_name)
    materials = [canonical_material(m, "policy.materials") for m in body["policy"]["materials"]]
    body = {
        **body,
        "material": canonical_material(body["material"]),
        "profile": canonical_profile(body["profile"]),
        "policy": {**body["policy"], "materials": materials},
    }
    body["driver_options"] = _driver_options(body)
    machine = _offline_machine(body, machine_id)
    agent_toml(body, broker, hub_url, "unissued")  # raises now, before anything is stored
    try:
        store.catalog.get_machine(machine_id)
    except NotFound:
        pass
    else:
        raise Conflict(f"machine {machine_id} is already registered")
    accounts = AgentAccounts(store, broker)
    password = None if accounts.exists(agent) else accounts.create(agent, user_id, now)
    stored = False
    try:
        try:
            store.catalog.add_maker(agent, now, maker_id=agent)
        except Conflict:
            pass  # the agent's maker exists already
        store.catalog.upsert_machine(machine)
        stored = True
    finally:
        if password is not None and not stored:
            accounts.delete(agent)
    note = accounts.issued_note(agent) if password else KEPT.format(agent=agent)
    log.info("registered machine %s (new broker account: %s)", machine_id, bool(password))
    return Registration(
        machine_id,
        agent,
        password,
        agent_toml(body, broker, hub_url, password),
        broker.password_file if password and accounts.file else None,
        note,
    )


BROKER_PASSWORD = Schema(
    "BrokerPassword",
    (
        Field("agent", "string", required=True),
        Field("url", "string", required=True),
        Field("username", "string", required=True),
        Field("password", "string", required=True, description="shown once"),
        Field("note", "string", required=True),
    ),
)
ACCOUNT_STATE = Schema(
    "BrokerAccountChanged",
    (
        Field("agent", "string", required=True),
        Field("broker_account", "string", required=True, enum=("enabled", "disabled", "deleted")),
        Field("note", "string", required=True),
    ),
)
STATE_NOTES = {
    "disabled": "disconnected now; the broker refuses its log-ins until it is enabled",
    "enabled": "the agent may log in again with its password",
    "deleted": "disconnected and forgotten; its machines stay recorded; registering a machine "
    "for it again issues a new password",
}


def register_account_routes(routes: ApiRoutes, ctx: ApiContext) -> None:
    """``/makers/<agent>/...``: reset, disable, enable and delete an agent's broker account
    (the agent's maker or an operator)."""

    def accounts_of(user: User | None, agent: str) -> AgentAccounts:
        if not user_of(user).owns_maker(agent):
            forbid(f"agent {agent!r} is not one of your makers")
        return AgentAccounts(ctx.store, ctx.broker)

    def changed(agent: str, state: str) -> dict[str, Any]:
        return {"agent": agent, "broker_account": state, "note": STATE_NOTES[state]}

    @routes.route(
        "POST",
        "/makers/<agent>/broker-password",
        summary="Issue a new broker password for an agent (the old one stops working)",
        roles=(MAKER,),
        response=BROKER_PASSWORD,
    )
    def reset_broker_password(user: User | None, agent: str) -> dict[str, Any]:
        password = accounts_of(user, agent).reset(agent)
        note = f"new broker password for agent {agent}, shown once: put it in its agent.toml"
        return {"agent": agent, "url": ctx.broker.url, "username": agent, "password": password,
                "note": note}  # fmt: skip

    @routes.route(
        "POST",
        "/makers/<agent>/disable",
        summary="Disable an agent's broker account: disconnected, log-ins refused",
        roles=(MAKER,),
        response=ACCOUNT_STATE,
    )
    def disable_agent(user: User | None, agent: str) -> dict[str, Any]:
        accounts_of(user, agent).set_enabled(agent, False)
        return changed(agent, "disabled")

    @routes.route(
        "POST",
        "/makers/<agent>/enable",
        summary="Enable a disabled agent's broker account again",
        roles=(MAKER,),
        response=ACCOUNT_STATE,
    )
    def enable_agent(user: User | None, agent: str) -> dict[str, Any]:
        accounts_of(user, agent).set_enabled(agent, True)
        return changed(agent, "enabled")

    @routes.route(
        "DELETE",
        "/makers/<agent>/broker-account",
        summary="Delete an agent's broker account (its machines stay recorded)",
        roles=(MAKER,),
        response=ACCOUNT_STATE,
    )
    def delete_agent_account(user: User | None, agent: str) -> dict[str, Any]:
        accounts_of(user, agent).delete(agent)
        return changed(agent, "deleted")
