"""``fabnet machines``: a maker registers the machines of their agent.toml with a hub and gets
the agent's broker password written into that file (only that value changes; comments stay),
then runs ``fabnet agent --config agent.toml``. ``machines list`` shows what the hub knows."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import click

from fabnet.errors import Conflict, InvalidInput
from fabnet.hub.rest_client import HubClient
from fabnet.secrets_check import is_placeholder

POLICY_KEYS = ("materials", "max_task_hours", "auto_accept", "windows")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PASSWORD = re.compile(r"""^(\s*password\s*=\s*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*')(.*)$""")


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InvalidInput(f"no such agent config: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from None


def registration_bodies(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``POST /api/v1/machines`` body per ``[[machines]]`` of an agent config. Raises
    InvalidInput naming the file and the missing key; the hub checks the values."""
    agent = data.get("agent", {}).get("id")
    if not isinstance(agent, str) or not agent:
        raise InvalidInput(f"{path}: [agent] id is missing")
    machines = data.get("machines", [])
    if not machines:
        raise InvalidInput(f"{path}: no [[machines]] to register")
    bodies = []
    for i, machine in enumerate(machines):
        for key in ("id", "profile", "driver", "material"):
            if key not in machine:
                raise InvalidInput(f"{path}: machines[{i}].{key} is missing")
        policy = {k: v for k, v in machine.get("policy", {}).items() if k in POLICY_KEYS}
        body = {k: machine[k] for k in ("profile", "material")}
        body.update(agent=agent, machine=machine["id"], driver=machine["driver"])
        if policy:
            body["policy"] = policy
        if machine.get("driver_options"):
            body["driver_options"] = machine["driver_options"]
        bodies.append(body)
    return bodies


def set_broker_password(path: Path, password: str) -> None:
    """Put ``password`` as ``[broker] password`` in the TOML file ``path``, changing only that
    value (or adding the key or table); the result is parsed back before it replaces the file,
    which is left readable by its owner only. Raises InvalidInput if the file cannot be edited
    that way (e.g. a multi-line string)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    value = json.dumps(password)
    table: str | None = None
    header_at: int | None = None
    done = False
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            table = header.group(1)
            header_at = i if table == "broker" else header_at
            continue
        if table == "broker" and line.lstrip().startswith("password"):
            match = _PASSWORD.match(line.rstrip("\r\n"))
            if match is None:
                raise InvalidInput(f"{path}: cannot edit [broker] password: {line.strip()!r}")
            ending = line[len(line.rstrip("\r\n")) :]
            lines[i] = f"{match.group(1)}{value}{match.group(3)}{ending or os.linesep}"
            done = True
            break
    if not done and header_at is not None:
        lines.insert(header_at + 1, f"password = {value}\n")
    elif not done:
        lines.append(f"\n[broker]\npassword = {value}\n")
    text = "".join(lines)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: editing [broker] password would break it: {exc}") from None
    if parsed.get("broker", {}).get("password") != password:
        raise InvalidInput(f"{path}: [broker] password could not be set")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


TOKEN = click.option(
    "--token", envvar="FABNET_TOKEN", required=True, help="Your API token ($FABNET_TOKEN)."
)


@click.group()
def machines() -> None:
    """Register your agent's machines with a hub; list the machines the hub knows."""


@machines.command("register")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Your agent.toml: every [[machines]] in it is registered.",
)
@click.option("--hub", "hub_url", help="The hub's URL (default: [agent] hub_url of the config).")
@TOKEN
@click.option(
    "--reset-password",
    is_flag=True,
    help="Ask the hub for a new broker password for the agent (the old one stops working).",
)
def register_command(
    config_path: Path, hub_url: str | None, token: str, reset_password: bool
) -> None:
    """Register every machine of --config with the hub and write the agent's broker password
    into its [broker] password. A machine already registered is reported and skipped."""
    data = _read(config_path)
    bodies = registration_bodies(config_path, data)
    agent = bodies[0]["agent"]
    hub = HubClient(hub_url or data["agent"].get("hub_url", "http://127.0.0.1:5000"), token)
    password: str | None = None
    for body in bodies:
        machine_id = f"{agent}/{body['machine']}"
        try:
            done = hub.call("POST", "/machines", body)
        except Conflict as exc:
            click.echo(f"{machine_id}: skipped ({exc})")
            continue
        password = done["broker"]["password"] or password
        click.echo(f"{machine_id}: registered; {done['note']}")
    if reset_password:
        password = hub.call("POST", f"/makers/{agent}/broker-password")["password"]
        click.echo(f"agent {agent}: new broker password issued")
    current = str(data.get("broker", {}).get("password", ""))
    if password:
        set_broker_password(config_path, password)
        click.echo(f"wrote the broker password into {config_path} [broker] password")
    elif not current or is_placeholder(current):
        raise click.ClickException(
            f"{config_path} has no broker password and the hub kept agent {agent}'s existing "
            "one: run again with --reset-password to get a new one"
        )
    click.echo(f"start your agent: fabnet agent --config {config_path}")


@machines.command("list")
@click.option("--hub", "hub_url", default="http://127.0.0.1:5000", show_default=True)
@TOKEN
def list_command(hub_url: str, token: str) -> None:
    """List the machines you may see (an operator: all) with state and loaded material."""
    found = HubClient(hub_url, token).call("GET", "/machines?limit=1000")
    if not found:
        click.echo("no machines")
    for m in found:
        click.echo(
            f"{m['id']:<32} {m['state']:<8} {m['kind']:<4} {m['profile']:<16} "
            f"{m['driver']:<10} {','.join(m['materials'])}"
        )
