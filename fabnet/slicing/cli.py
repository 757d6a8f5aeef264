"""``fabnet slice``: a design and a machine profile in, checked G-code and its figures out."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from fabnet.errors import InvalidInput, ToolMissing
from fabnet.profiles import (
    CncMaterial,
    CncProfile,
    FdmMaterial,
    MachineProfile,
    load_materials,
    load_profile,
)
from fabnet.slicing.base import Slicer, SliceSettings

EXTERNAL_SLICERS = ("prusaslicer", "curaengine")
_DEFAULTS = SliceSettings()


class TerminalProgress:
    """A progress callback that draws a click progress bar on stderr once slicing starts."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=total, label="slicing", file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)


def _material(name: str, profile: MachineProfile) -> FdmMaterial | CncMaterial:
    """The material called ``name``, of the kind the profile's machine uses; InvalidInput otherwise."""
    try:
        material = load_materials().get(name)
    except KeyError as exc:
        raise InvalidInput(f"--material: {exc.args[0]}") from exc
    if material.kind is not profile.kind:
        raise InvalidInput(
            f"--material {name} is for {material.kind.value} machines; "
            f"profile {profile.id} is {profile.kind.value}"
        )
    return material


def _slicer(name: str, profile: MachineProfile, progress: TerminalProgress | None) -> Slicer:
    """The slicer to run: CNC profiles always get the CNC generator."""
    if isinstance(profile, CncProfile):
        if name != "builtin":
            raise InvalidInput(f"--slicer {name} cannot cut on CNC profile {profile.id}")
        from fabnet.slicing.cnc import CncToolpathGenerator

        return CncToolpathGenerator()
    if name in EXTERNAL_SLICERS:
        try:
            from fabnet.slicing.registry import get_slicer
        except ImportError as exc:
            raise ToolMissing(
                f"--slicer {name}: the external slicer adapters are not installed ({exc})"
            ) from exc
        return get_slicer(name)
    from fabnet.slicing.fdm import BuiltinSlicer

    return BuiltinSlicer(progress=progress)


def _summary(
    gcode: str, profile: MachineProfile, material: FdmMaterial | CncMaterial, builtin: bool
) -> str:
    """One line of figures from the analyser: layers, time, filament, grams and cost.

    The built-in slicer's header already holds the analyser's figures; others are analysed.
    """
    from fabnet.gcode import analyse
    from fabnet.slicing.fdm import read_header

    if isinstance(material, FdmMaterial):
        header = read_header(gcode) if builtin else None
        if header is None:
            figures = analyse(gcode, profile, material)
            header = {
                "layer_count": figures.layers,
                "estimated_time_s": figures.time_s,
                "filament_mm": figures.filament_mm,
                "filament_g": figures.grams,
            }
        hours, rest = divmod(int(header["estimated_time_s"]), 3600)
        cost = header["filament_g"] / 1000.0 * material.cost_per_kg
        return (
            f"{header['layer_count']:.0f} layers, {hours}h{rest // 60:02d}m, "
            f"{header['filament_mm'] / 1000.0:.2f} m filament, {header['filament_g']:.1f} g, "
            f"{cost:.2f} EUR of {material.name}"
        )
    figures = analyse(gcode, profile)
    hours, rest = divmod(int(figures.time_s), 3600)
    return f"{hours}h{rest // 60:02d}m, {figures.cut_mm / 1000.0:.2f} m of cuts in {material.name}"


@click.command("slice")
@click.argument("design")
@click.option("--profile", "profile_id", required=True, help="Firmware profile, e.g. prusa_mk3s.")
@click.option("--material", "material_name", required=True, help="Material, e.g. PLA or plywood.")
@click.option(
    "--layer-height", type=float, default=_DEFAULTS.layer_height_mm, show_default=True, help="mm"
)
@click.option(
    "--infill", type=float, default=_DEFAULTS.infill_percent, show_default=True, help="percent"
)
@click.option("--walls", type=int, default=_DEFAULTS.walls, show_default=True)
@click.option("--quantity", type=int, default=1, show_default=True, help="Copies on one plate.")
@click.option(
    "--slicer",
    "slicer_name",
    type=click.Choice(["builtin", *EXTERNAL_SLICERS]),
    default="builtin",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def slice_command(
    design: str,
    profile_id: str,
    material_name: str,
    layer_height: float,
    infill: float,
    walls: int,
    quantity: int,
    slicer_name: str,
    output: Path,
) -> None:
    """Slice DESIGN (a library slug or a mesh file) for one machine and write checked G-code."""
    from fabnet.gcode import assert_safe
    from fabnet.library.design import resolve_design
    from fabnet.library.mesh import load_mesh, prepare_mesh

    profile = load_profile(profile_id)
    material = _material(material_name, profile)
    settings = SliceSettings(
        layer_height_mm=layer_height, infill_percent=infill, walls=walls, quantity=quantity
    )
    found = resolve_design(design)
    prepared = prepare_mesh(load_mesh(found.mesh_path), profile)
    for note in prepared.notes:
        click.echo(f"mesh: {note}", err=True)
    with TerminalProgress() as bar:
        slicer = _slicer(slicer_name, profile, bar if sys.stderr.isatty() else None)
        result = slicer.slice(prepared.mesh, profile, material, settings)
    for note in result.notes:
        click.echo(f"{result.slicer}: {note}", err=True)
    assert_safe(result.gcode, profile)
    output.write_text(result.gcode)
    summary = _summary(result.gcode, profile, material, builtin=result.slicer == "builtin")
    click.echo(f"wrote {output}: {summary}")
