"""Registering a machine: the agent config TOML a maker runs, the agent's broker identity
(Mosquitto ``$7$`` hash recorded; password file rewritten when configured) and an offline
machine row so the machine shows up before its agent first reports."""

from __future__ import annotations

import json
import logging
import os
import secrets
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fabnet.bus.broker import password_hash
from fabnet.bus.topics import check_id
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState
from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.hub.machines import hub_machine_id
from fabnet.profiles import CncProfile, list_profiles, load_profile
from fabnet.store import Store
from fabnet.web.api.context import BrokerSettings

log = logging.getLogger(__name__)

PASSWORD_BYTES = 18


@dataclass(frozen=True)
class Registration:
    machine_id: str
    agent: str
    password: str | None  # None: the agent already had one (kept)
    config_toml: str
    password_file: Path | None


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


def write_password_file(store: Store, broker: BrokerSettings) -> Path | None:
    """Rewrite Mosquitto's password file: the hub's user and every recorded agent.

    ``fabnet.bus.broker.write_password_file`` needs every password in clear; the hub keeps
    only hashes, so the recorded ``$7$`` lines are written as they are.
    """
    if broker.password_file is None:
        return None
    entries = dict(store.accounts.broker_hashes())
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


def register_machine(
    store: Store,
    body: dict[str, Any],
    user_id: str | None,
    broker: BrokerSettings,
    hub_url: str,
    now: datetime,
) -> Registration:
    """Record the machine, its agent's maker row and broker identity; raises InvalidInput
    (ids, profile) or Conflict (machine already registered)."""
    agent = check_id(body["agent"], "agent")
    machine_name = check_id(body["machine"], "machine")
    machine_id = hub_machine_id(agent, machine_name)
    machine = _offline_machine(body, machine_id)
    try:
        store.catalog.get_machine(machine_id)
    except NotFound:
        pass
    else:
        raise Conflict(f"machine {machine_id} is already registered")
    try:
        store.catalog.add_maker(agent, now, maker_id=agent)
    except Conflict:
        pass  # the agent's maker exists already
    store.catalog.upsert_machine(machine)
    password: str | None = secrets.token_urlsafe(PASSWORD_BYTES)
    assert password is not None
    if not store.accounts.add_broker_account(agent, password_hash(password), user_id, now):
        password = None
    written = write_password_file(store, broker) if password else None
    log.info("registered machine %s (new broker identity: %s)", machine_id, bool(password))
    return Registration(
        machine_id, agent, password, agent_toml(body, broker, hub_url, password), written
    )
