"""``fabnet ledger export``: an account's statement as CSV, over the hub's REST API (a user
exports their own account, an operator any: a user name, or an account such as ``hub:fees``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlencode

import click

from fabnet.errors import InvalidInput
from fabnet.hub.cli import HUB_URL, TOKEN
from fabnet.hub.economy.statements import LINE_COLUMNS, MONTH_COLUMNS, to_csv
from fabnet.hub.rest_client import HubClient


def day(name: str, text: str | None) -> date | None:
    """A ``YYYY-MM-DD`` option; ``InvalidInput`` naming it otherwise."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a date YYYY-MM-DD, got {text!r}") from None


def window(since: date | None, until: date | None) -> dict[str, str]:
    """The API's ``[since, until)`` for the days ``since`` .. ``until`` inclusive (UTC)."""
    if since and until and until < since:
        raise InvalidInput(f"--to {until} is before --from {since}")
    query = {}
    if since is not None:
        query["since"] = datetime.combine(since, time(), UTC).isoformat()
    if until is not None:
        query["until"] = datetime.combine(until + timedelta(days=1), time(), UTC).isoformat()
    return query


def statement_query(account: str | None, since: date | None, until: date | None) -> str:
    """The query string of ``/credits/statement``: ``account`` is a user name, or an
    account (it has a colon: ``user:ada``, ``hub:fees``); None: one's own."""
    query = window(since, until)
    if account:
        query["account" if ":" in account else "user"] = account
    return "?" + urlencode(query) if query else ""


@click.group("ledger")
def ledger() -> None:
    """Credit statements of the hub's ledger."""


@ledger.command("export")
@click.option("--account", help="A user name or an account (hub:fees, maker:<id>); default: yours.")
@click.option("--from", "since", metavar="YYYY-MM-DD", help="First day (UTC), inclusive.")
@click.option("--to", "until", metavar="YYYY-MM-DD", help="Last day (UTC), inclusive.")
@click.option("--monthly", is_flag=True, help="One row per month instead of one per posting.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
@HUB_URL
@TOKEN
def export_command(
    account: str | None,
    since: str | None,
    until: str | None,
    monthly: bool,
    out: Path | None,
    hub_url: str,
    token: str,
) -> None:
    """Write an account's statement as CSV: each posting with what it earned, spent, paid in
    fees and held, and the balance after it (credits, three decimals)."""
    query = statement_query(account, day("--from", since), day("--to", until))
    client = HubClient(hub_url, token)
    if monthly:
        answer = client.call("GET", "/credits/statement/months" + query)
        text = to_csv(answer["months"], MONTH_COLUMNS)
    else:
        text = to_csv(client.call("GET", "/credits/statement" + query), LINE_COLUMNS)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text)
    click.echo(f"wrote {out}", err=True)
