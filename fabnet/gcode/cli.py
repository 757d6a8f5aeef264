"""``fabnet gcode analyse|check``: what a G-code file does, and whether a machine may run it."""

from __future__ import annotations

import json
import sys

import click

from fabnet.errors import InvalidInput
from fabnet.gcode.analysis import analyse
from fabnet.gcode.safety import check
from fabnet.profiles import FdmMaterial, load_materials, load_profile


@click.group()
def gcode() -> None:
    """Analyse and safety-check G-code."""


@gcode.command("analyse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--profile", "profile_id", help="Machine profile (limits, filament diameter).")
@click.option("--material", "material_name", help="Filament (density), e.g. PLA.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
def analyse_command(
    file: str, profile_id: str | None, material_name: str | None, as_json: bool
) -> None:
    """Layers, bounds, filament, grams and time estimate of FILE (.gcode or .gcode.gz)."""
    profile = load_profile(profile_id) if profile_id else None
    material = None
    if material_name:
        try:
            found = load_materials().get(material_name)
        except KeyError as exc:
            raise InvalidInput(str(exc.args[0])) from exc
        if not isinstance(found, FdmMaterial):
            raise InvalidInput(f"--material {material_name!r} is not a filament")
        material = found
    result = analyse(file, profile, material)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    hours, rest = divmod(int(round(result.time_s)), 3600)
    lo, hi = result.bounds_min, result.bounds_max
    click.echo(f"lines:      {result.lines}")
    click.echo(f"layers:     {result.layers} ({result.layer_source})")
    click.echo(f"filament:   {result.filament_mm:.1f} mm, {result.grams:.2f} g")
    click.echo(f"time:       {hours}h {rest // 60:02d}m {rest % 60:02d}s")
    click.echo(
        "bounds:     " + " ".join(f"{a} {lo[i]:.2f}..{hi[i]:.2f}" for i, a in enumerate("XYZ"))
    )
    click.echo(f"hotend/bed: {result.max_hotend_c:g} / {result.max_bed_c:g} °C")
    click.echo(f"max feed:   {result.max_feed_mm_s:.1f} mm/s")
    if result.spindle_max_rpm:
        click.echo(f"spindle:    {result.spindle_max_rpm:g} rpm")
    click.echo(f"cut/rapid:  {result.cut_mm:.1f} / {result.rapid_mm:.1f} mm")


@gcode.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--profile", "profile_id", required=True, help="Machine profile to check against.")
@click.option("--json", "as_json", is_flag=True, help="Print the violations as JSON.")
def check_command(file: str, profile_id: str, as_json: bool) -> None:
    """Check FILE against a profile's limits; exit status 1 when any line violates them."""
    profile = load_profile(profile_id)
    violations = check(file, profile)
    if as_json:
        body = {"profile": profile.id, "ok": not violations,
                "violations": [v.to_dict() for v in violations]}  # fmt: skip
        click.echo(json.dumps(body, indent=2))
    elif violations:
        for v in violations:
            click.echo(f"line {v.line_no}: {v.rule}: {v.message}  | {v.raw.strip()}")
    else:
        from fabnet.gcode.parser import read_text

        lines = len(read_text(file).splitlines())
        click.echo(f"ok: {lines} lines checked")
    if violations:
        sys.exit(1)
