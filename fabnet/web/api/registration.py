"""Registering a machine: the agent config TOML a maker runs, an offline machine row so the
machine shows up before its agent first reports, and the agent's broker account — created in
the broker first (dynamic security: over ``$CONTROL``, no file, no signal), then recorded as a
Mosquitto ``$7$`` hash, so a broker failure stores nothing (``broker_accounts``; its routes,
re-exported here, are in ``broker_account_routes``)."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fabnet.bus.topics import check_id
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState
from fabnet.drivers.registry import check_driver_options
from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.hub.machines import hub_machine_id
from fabnet.profiles import CncProfile, list_profiles, load_profile
from fabnet.profiles.canonical import canonical_material, canonical_profile
from fabnet.store import Store
from fabnet.web.api.broker_account_routes import register_account_routes
from fabnet.web.api.broker_accounts import AgentAccounts
from fabnet.web.api.context import BrokerSettings

log = logging.getLogger(__name__)

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # a TOML bare key: written into agent.toml as is
KEPT = (
    "agent {agent} already has a broker password: it is kept (the one in its agent.toml); "
    "POST /api/v1/makers/{agent}/broker-password issues a new one"
)

__all__ = ["Registration", "agent_toml", "register_account_routes", "register_machine"]


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
