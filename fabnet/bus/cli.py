"""``fabnet broker-config``: write Mosquitto's password file, the fabnet ACL and a sample config."""

from __future__ import annotations

from pathlib import Path

import click

from fabnet.bus.broker import broker_config
from fabnet.bus.topics import is_valid_id


def _parse_agent(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not is_valid_id(name) or not password:
        raise click.BadParameter(
            f"expected NAME:PASSWORD with NAME of 1-64 letters, digits, '_' or '-', got {value!r}",
            param_hint="--agent",
        )
    return name, password


@click.command("broker-config")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write passwd, acl and mosquitto.conf into.",
)
@click.option("--hub-user", default="hub", show_default=True, help="The hub's broker username.")
@click.option(
    "--hub-password",
    required=True,
    envvar="FABNET_HUB_PASSWORD",
    help="The hub's broker password (or $FABNET_HUB_PASSWORD).",
)
@click.option(
    "--agent",
    "agents",
    multiple=True,
    metavar="NAME:PASSWORD",
    help="An agent's broker login; NAME is its agent id. Repeat per agent.",
)
@click.option(
    "--port",
    default=1883,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Listener port written into the sample mosquitto.conf.",
)
def broker_config_command(
    out_dir: Path, hub_user: str, hub_password: str, agents: tuple[str, ...], port: int
) -> None:
    """Write Mosquitto's password file and the fabnet ACL (each agent may write only under
    fabnet/v1/agents/NAME/ and read only its own commands), plus a sample mosquitto.conf."""
    users = {hub_user: hub_password}
    for value in agents:
        name, password = _parse_agent(value)
        if name in users:
            raise click.BadParameter(f"{name!r} is given twice", param_hint="--agent")
        users[name] = password
    files = broker_config(out_dir, users, hub_user=hub_user, port=port)
    click.echo(
        f"wrote {files.password_file} ({len(users)} users), {files.acl_file}, {files.config_file}"
    )
    click.echo(f"run: mosquitto -c {files.config_file}")
