"""``fabnet profiles list|show``: the machines fabnet knows and their limits."""

from __future__ import annotations

import dataclasses
import json

import click

from fabnet.profiles.loader import list_profiles, load_materials, load_profile


@click.group()
def profiles() -> None:
    """Firmware profiles and materials."""


@profiles.command("list")
def list_command() -> None:
    """List profiles by id, with kind and build volume."""
    for profile_id in list_profiles():
        p = load_profile(profile_id)
        v = p.volume
        click.echo(
            f"{profile_id:<18} {p.kind.value:<4} {v.x_mm:g}x{v.y_mm:g}x{v.z_mm:g} mm  {p.name}"
        )


@profiles.command("show")
@click.argument("profile")
def show_command(profile: str) -> None:
    """Show one profile's limits as JSON."""
    click.echo(json.dumps(dataclasses.asdict(load_profile(profile)), indent=2, default=str))


@profiles.command("materials")
def materials_command() -> None:
    """List the materials table."""
    table = load_materials()
    for fdm in table.fdm.values():
        click.echo(
            f"fdm  {fdm.name:<10} nozzle {fdm.nozzle_c:g} °C bed {fdm.bed_c:g} °C "
            f"{fdm.density_g_cm3:g} g/cm³ {fdm.cost_per_kg:g} EUR/kg"
        )
    for cnc in table.cnc.values():
        click.echo(
            f"cnc  {cnc.name:<10} {cnc.thickness_mm:g} mm feed {cnc.feed_mm_min:g} mm/min "
            f"{cnc.depth_per_pass_mm:g} mm/pass {cnc.density_g_cm3:g} g/cm³"
        )
