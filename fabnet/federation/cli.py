"""``fabnet peers``: this hub's federation key (read locally from its config) and its peer hubs
(through the hub's REST API with an operator token, as ``fabnet submit`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from fabnet.config import load_hub_config
from fabnet.errors import ConfigError
from fabnet.federation.keys import HubKey
from fabnet.hub.rest_client import HubClient

HUB = click.option("--hub", "hub_url", envvar="FABNET_HUB_URL", default="http://127.0.0.1:5000",
                   show_default=True, help="The hub's URL ($FABNET_HUB_URL).")  # fmt: skip
TOKEN = click.option("--token", envvar="FABNET_TOKEN", required=True,
                     help="An operator's API token ($FABNET_TOKEN).")  # fmt: skip
YES_NO = click.Choice(["yes", "no"])


@click.group()
def peers() -> None:
    """Peer hubs this hub shares work with (issue 12)."""


@peers.command("key")
@click.option("--config", "config_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The hub's hub.toml.")  # fmt: skip
def key_command(config_path: Path) -> None:
    """Print this hub's name and public key (made on first use) for its peers' operators."""
    config = load_hub_config(config_path)
    if config.federation is None:
        raise ConfigError(f"{config_path}: no [federation] settings")
    key = HubKey.load_or_create(config.federation.key_file)
    click.echo(f"name   {config.federation.name}")
    click.echo(f"key    {key.public.text}")
    click.echo(f"key_id {key.key_id}")


@peers.command("add")
@click.argument("name")
@click.option("--url", required=True, help="The peer hub's base URL (https://...).")
@click.option(
    "--key", "public_key", required=True, help="The peer's public key (fabnet peers key)."
)
@click.option("--materials", default="", help="Materials shared, comma-separated (default: any).")
@click.option("--kinds", default="fdm,cnc", show_default=True, help="Machine kinds shared.")
@click.option("--max-in-flight", type=click.IntRange(0, 10_000), default=10, show_default=True)
@click.option("--charges-credits", type=YES_NO, default="yes", show_default=True,
              help="Whether the peer charges credits for the work it makes.")  # fmt: skip
@HUB
@TOKEN
def add_command(name: str, url: str, public_key: str, materials: str, kinds: str,
                max_in_flight: int, charges_credits: str, hub_url: str,
                token: str) -> None:  # fmt: skip
    """Add peer hub NAME; then ask its operator to add this hub, and run ``peers hello``."""
    body = {
        "name": name,
        "url": url,
        "key": public_key,
        "materials": _items(materials),
        "kinds": _items(kinds),
        "max_in_flight": max_in_flight,
        "charges_credits": charges_credits == "yes",
    }
    _show(HubClient(hub_url, token).call("POST", "/peers", body))


@peers.command("list")
@HUB
@TOKEN
def list_command(hub_url: str, token: str) -> None:
    """The peer hubs, their state and what is shared with each."""
    found = HubClient(hub_url, token).call("GET", "/peers")
    if not found:
        click.echo("no peers")
    for peer in found:
        _show(peer)


def _state_command(verb: str, method: str, suffix: str, doc: str) -> None:
    @peers.command(verb, help=doc)
    @click.argument("name")
    @HUB
    @TOKEN
    def command(name: str, hub_url: str, token: str) -> None:
        _show(HubClient(hub_url, token).call(method, f"/peers/{quote(name, safe='')}{suffix}"))


_state_command("pause", "POST", "/pause", "Pause the peering with NAME (its requests refused).")
_state_command("resume", "POST", "/resume", "Resume a paused peering.")
_state_command("remove", "DELETE", "", "Remove the peering with NAME.")
_state_command("hello", "POST", "/hello", "Say a signed hello to NAME: confirms the link.")


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _show(peer: dict[str, Any]) -> None:
    materials = ",".join(peer["materials"]) or "any"
    link = "confirmed" if peer["confirmed"] else "not confirmed"
    click.echo(
        f"{peer['name']:<20} {peer['state']:<8} {peer['url']}  kinds={','.join(peer['kinds'])} "
        f"materials={materials} max_in_flight={peer['max_in_flight']} "
        f"charges_credits={'yes' if peer['charges_credits'] else 'no'} {link}"
    )
