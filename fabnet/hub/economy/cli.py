"""``fabnet quote``: ask a hub what copies of a design would cost, over its REST API."""

from __future__ import annotations

import click

from fabnet.hub.cli import HUB_URL, TOKEN
from fabnet.hub.economy.statements import credits_text
from fabnet.hub.rest_client import HubClient


@click.command("quote")
@click.argument("design")
@click.option("--quantity", type=int, required=True)
@click.option("--material", required=True)
@HUB_URL
@TOKEN
def quote_command(design: str, quantity: int, material: str, hub_url: str, token: str) -> None:
    """What QUANTITY copies of DESIGN in MATERIAL would cost, how soon, and on which machines."""
    body = {"design": design, "quantity": quantity, "material": material}
    answer = HubClient(hub_url, token).call("POST", "/quotes", body)
    terms = answer["terms"]
    if answer["lowest_mc"] is None:
        click.echo(f"no machine can make {design} in {answer['material']} now")
        return
    value = terms["credit_value"]
    click.echo(
        f"{quantity} x {design} in {answer['material']}: "
        f"lowest {credits_text(answer['lowest_mc'])}, typical {credits_text(answer['typical_mc'])}, "
        f"highest {credits_text(answer['highest_mc'])} credits "
        f"(1 credit = {value:g} {terms['currency']}, fee {terms['fee_percent']:g} % included); "
        f"done in about {answer['eta_hours']:.1f} h"
    )
    for m in answer["machines"]:
        click.echo(
            f"  {m['machine']:<32} {credits_text(m['total_mc']):>14}  {m['hours_per_part']:.2f} h/part"
        )
