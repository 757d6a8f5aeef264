"""``fabnet broker-config``: write what Mosquitto needs for fabnet — a password file and the
fabnet ACL (static), or the dynamic-security plugin's initial state (``--dynsec``), optionally a
test CA, server certificate and TLS listener (``--tls``) — and a sample mosquitto.conf."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from fabnet.bus.broker import DYNSEC, FILE, BrokerFiles, broker_config
from fabnet.bus.tls import DEFAULT_TLS_PORT
from fabnet.bus.topics import is_valid_id
from fabnet.config import load_hub_config

LOCAL_NAMES = ("localhost", "127.0.0.1")


def _parse_agent(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not is_valid_id(name) or not password:
        raise click.BadParameter(
            f"expected NAME:PASSWORD with NAME of 1-64 letters, digits, '_' or '-', got {value!r}",
            param_hint="--agent",
        )
    return name, password


def _tls_names(given: tuple[str, ...], config_host: str | None) -> list[str]:
    """The names the server certificate is valid for: those given, else the hub config's
    broker host, this computer's name and the loopback names."""
    if given:
        return list(given)
    names = [config_host] if config_host else []
    return list(dict.fromkeys([*names, socket.gethostname(), *LOCAL_NAMES]))


def _report(files: BrokerFiles, users: int, tls_port: int, names: list[str]) -> None:
    written = [files.password_file, files.acl_file, files.dynsec_file, files.config_file]
    click.echo("wrote " + ", ".join(str(p) for p in written if p) + f" ({users} users)")
    if files.dynsec_file:
        click.echo(
            "dynamic security: the hub user is the plugin's admin; with [broker] accounts = "
            '"dynsec" the hub adds, disables and removes agents as makers register machines'
        )
    if files.tls:
        click.echo(
            f"TLS listener on port {tls_port}; certificate for {', '.join(names)}. In hub.toml "
            f'and each agent.toml: url = "mqtts://{names[0]}:{tls_port}", '
            f'ca_file = "{files.tls.ca_cert}" (keep {files.tls.ca_key.name} private)'
        )
    click.echo(f"run: mosquitto -c {files.config_file}")


@click.command("broker-config")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the broker's files and mosquitto.conf into.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The hub's config: its [broker] username and password become the hub user.",
)
@click.option("--hub-user", default="hub", show_default=True, help="Without --config.")
@click.option(
    "--hub-password",
    envvar="FABNET_HUB_PASSWORD",
    help="Without --config: the hub's broker password (or $FABNET_HUB_PASSWORD).",
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
    type=click.IntRange(1, 65535),
    help="Plain listener (127.0.0.1). Default: the hub config's mqtt:// port, else 1883.",
)
@click.option(
    "--dynsec",
    is_flag=True,
    help="Use Mosquitto's dynamic-security plugin: the hub manages agents at run time.",
)
@click.option("--tls", is_flag=True, help="Add a test CA, a server certificate and a TLS listener.")
@click.option(
    "--tls-port",
    type=click.IntRange(1, 65535),
    help=f"TLS listener port. Default: the hub config's mqtts:// port, else {DEFAULT_TLS_PORT}.",
)
@click.option(
    "--tls-name",
    "tls_names",
    multiple=True,
    metavar="HOST",
    help="A host name or address agents reach the broker by (repeat). Default: the hub "
    "config's broker host, this computer's name, localhost, 127.0.0.1.",
)
def broker_config_command(
    out_dir: Path,
    config_path: Path | None,
    hub_user: str,
    hub_password: str | None,
    agents: tuple[str, ...],
    port: int | None,
    dynsec: bool,
    tls: bool,
    tls_port: int | None,
    tls_names: tuple[str, ...],
) -> None:
    """Write Mosquitto's users and the fabnet ACL (each agent may write only under
    fabnet/v1/agents/NAME/ and read only its own commands and the hub status), plus a sample
    mosquitto.conf. Static by default (passwd + acl; agents added later need a SIGHUP);
    with --dynsec the hub adds agents over $CONTROL/dynamic-security/v1 while Mosquitto runs."""
    config_host = None
    if config_path is not None:
        broker = load_hub_config(config_path).broker
        hub_user, hub_password, config_host = broker.username, broker.password, broker.host
        tls = tls or broker.tls
        port = port or (None if broker.tls else broker.port)
        tls_port = tls_port or (broker.port if broker.tls else None)
        if broker.accounts == DYNSEC and not dynsec:
            click.echo(f'note: {config_path} says accounts = "dynsec"; add --dynsec to match')
    if not hub_password:
        raise click.UsageError("give --config hub.toml, or --hub-password")
    users = {hub_user: hub_password}
    for value in agents:
        name, password = _parse_agent(value)
        if name in users:
            raise click.BadParameter(f"{name!r} is given twice", param_hint="--agent")
        users[name] = password
    names = _tls_names(tls_names, config_host) if tls else []
    files = broker_config(
        out_dir,
        users,
        hub_user=hub_user,
        port=port or 1883,
        accounts=DYNSEC if dynsec else FILE,
        tls_names=names,
        tls_port=tls_port or DEFAULT_TLS_PORT,
    )
    _report(files, len(users), tls_port or DEFAULT_TLS_PORT, names)
