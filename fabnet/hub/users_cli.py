"""``fabnet users``: add people with roles, list them, issue and revoke API tokens — against
the database of a hub config file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from fabnet.config import load_hub_config
from fabnet.store import Store
from fabnet.store.accounts import Role

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="the hub's config file (its [database] url is used)",
)


@contextmanager
def _store(config_path: Path) -> Iterator[Store]:
    store = Store(load_hub_config(config_path).database_url)
    try:
        yield store
    finally:
        store.close()


@click.group()
def users() -> None:
    """Hub accounts: makers, requesters, operators and their API tokens."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="repeat for several roles",
)
@click.option("--maker-id", "maker_ids", multiple=True, help="an agent id this maker owns")
@click.option("--full-name", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@CONFIG
def add_command(
    name: str,
    roles: tuple[str, ...],
    maker_ids: tuple[str, ...],
    full_name: str,
    password: str,
    config_path: Path,
) -> None:
    """Add user NAME (their log-in and the requester name on their jobs)."""
    with _store(config_path) as store:
        account = store.accounts.add_user(
            name, password, roles, datetime.now(UTC), maker_ids=maker_ids, full_name=full_name
        )
    makers = f", makers {', '.join(sorted(account.maker_ids))}" if account.maker_ids else ""
    click.echo(f"user {account.name}: {', '.join(sorted(account.roles))}{makers}")


@users.command("list")
@CONFIG
def list_command(config_path: Path) -> None:
    """List users and their roles."""
    with _store(config_path) as store:
        for a in store.accounts.list_users():
            makers = f"  makers: {', '.join(sorted(a.maker_ids))}" if a.maker_ids else ""
            click.echo(f"{a.name:<24} {', '.join(sorted(a.roles)):<28}{makers}")


@users.command("token")
@click.argument("name")
@click.option("--name", "label", default="cli", show_default=True, help="a label for the token")
@CONFIG
def token_command(name: str, label: str, config_path: Path) -> None:
    """Issue an API token for user NAME and print it (the only time it is shown)."""
    with _store(config_path) as store:
        account = store.accounts.user_named(name)
        raw, info = store.accounts.issue_token(account.user_id, label, datetime.now(UTC))
    click.echo(f"token {info.token_id} ({label}) for {name}; keep it, it is not shown again:")
    click.echo(raw)


@users.command("revoke")
@click.argument("name")
@click.argument("token_id")
@CONFIG
def revoke_command(name: str, token_id: str, config_path: Path) -> None:
    """Revoke user NAME's token TOKEN_ID."""
    with _store(config_path) as store:
        account = store.accounts.user_named(name)
        store.accounts.revoke_token(account.user_id, token_id, datetime.now(UTC))
    click.echo(f"token {token_id} revoked")
