"""``fabnet designs``: list, show, add, remix, check and credit the designs of the library."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fabnet.errors import MeshError
from fabnet.library.catalog import add_design, remix_design
from fabnet.library.design import (
    Design,
    data_library_dir,
    design_facts,
    list_library,
    resolve_design,
)
from fabnet.library.design_toml import DesignRecord
from fabnet.library.lineage import credits, non_commercial_in
from fabnet.library.mesh import MeshFacts, MeshReport, check_mesh, load_mesh
from fabnet.library.tolerances import MAX_TRIANGLES
from fabnet.profiles import load_profile


def _size(facts: MeshFacts) -> str:
    return " x ".join(f"{v:.1f}" for v in facts.size_mm) + " mm"


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


F = TypeVar("F", bound=Callable[..., Any])
NO_LIBRARY = (
    "no library to add to: pass --config hub.toml (the hub's <data_dir>/designs) "
    "or --library DIR; the designs fabnet ships are read-only"
)


def library_options(command: F) -> F:
    """``--config`` and ``--library``: the user's library, in front of the seeded one."""
    command = click.option(
        "--library",
        "library",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="A library folder of your own (<slug>/design.toml + mesh).",
    )(command)
    return click.option(
        "--config",
        "config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A hub.toml: use that hub's library, <data_dir>/designs.",
    )(command)


def user_library(config: Path | None, library: Path | None) -> Path | None:
    """The library folder named by ``--library`` or by ``--config``'s data_dir, if any."""
    if config is not None and library is not None:
        raise click.UsageError("give --config or --library, not both")
    if library is not None:
        return library
    if config is not None:
        from fabnet.config import load_hub_config

        return data_library_dir(load_hub_config(config).data_dir)
    return None


def _target(config: Path | None, library: Path | None) -> Path:
    target = user_library(config, library)
    if target is None:
        raise click.UsageError(NO_LIBRARY)
    return target


@click.group()
def designs() -> None:
    """The open design library: the designs fabnet ships, plus a library of your own
    (--config hub.toml or --library DIR) that `add` and `remix` write to."""


@designs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@library_options
def list_command(as_json: bool, config: Path | None, library: Path | None) -> None:
    """Every design: slug, name, license, triangles, bounding box."""
    rows = [(d, design_facts(d)) for d in list_library(user_library(config, library))]
    if as_json:
        _echo_json([{**d.to_dict(), "facts": f.to_dict()} for d, f in rows])
        return
    header = ("SLUG", "NAME", "LICENSE", "TRIANGLES", "BBOX")
    table = [header] + [
        (d.slug, d.name[:40], d.license, str(f.triangles), _size(f)) for d, f in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _facts_lines(facts: MeshFacts) -> list[str]:
    lo = ", ".join(f"{round(v, 2) + 0.0:.2f}" for v in facts.bbox_min_mm)
    return [
        f"triangles:   {facts.triangles}",
        f"size:        {_size(facts)} (min corner {lo})",
        f"volume:      {facts.volume_mm3:.1f} mm³" + (" (inside-out)" if facts.inside_out else ""),
        f"watertight:  {'yes' if facts.watertight else 'no'} ({facts.open_edges} open edges, "
        f"{facts.nonmanifold_edges} non-manifold edges)",
        f"bodies:      {facts.bodies}",
    ]


@designs.command("show")
@click.argument("design")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_options
def show_command(design: str, as_json: bool, config: Path | None, library: Path | None) -> None:
    """Facts, license, lineage and sha256 of DESIGN (a slug or a mesh file)."""
    folder = user_library(config, library)
    found = resolve_design(design, folder)
    facts = design_facts(found)
    chain = credits(found, folder)
    nc = non_commercial_in(chain)
    if as_json:
        data = found.to_dict()
        data["facts"] = facts.to_dict()
        data["lineage"] = [c.__dict__ for c in chain[1:]]
        data["non_commercial_in_lineage"] = [c.slug for c in nc]
        _echo_json(data)
        return
    click.echo(f"{found.name} v{found.version} ({found.slug})")
    click.echo(f"author:      {found.author}")
    click.echo(f"license:     {found.license}")
    for credit in nc:
        click.echo(f"             non-commercial: {credit.slug} is {credit.license}")
    if found.source_url:
        click.echo(f"source:      {found.source_url}")
    if found.tags:
        click.echo(f"tags:        {', '.join(found.tags)}")
    click.echo(f"mesh:        {found.mesh_path}")
    click.echo(f"sha256:      {found.sha256}")
    for line in _facts_lines(facts):
        click.echo(line)
    if len(chain) > 1:
        click.echo("lineage:     " + " <- ".join(c.slug for c in chain))
    if found.description:
        click.echo(f"\n{found.description}")


def _tags(text: str) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in text.split(",") if tag.strip())


def _report_added(design: Design, notes: tuple[str, ...]) -> None:
    click.echo(f"added {design.slug} ({design.license}) sha256 {design.sha256}")
    for note in notes:
        click.echo(f"  note: {note}")


@designs.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--slug", required=True, help="lower-case-hyphenated id, e.g. faceshield-frame")
@click.option("--name", required=True)
@click.option("--author", required=True)
@click.option("--license", "license_id", required=True, help="SPDX id or A AND B / A OR B")
@click.option("--version", "version", default="1.0", show_default=True)
@click.option("--description", default="")
@click.option("--tags", default="", help="comma-separated, e.g. calibration,cube")
@click.option("--source-url", default=None)
@click.option("--remix-of", default=None, help="slug of the parent design")
@library_options
def add_command(
    file: Path,
    slug: str,
    name: str,
    author: str,
    license_id: str,
    version: str,
    description: str,
    tags: str,
    source_url: str | None,
    remix_of: str | None,
    config: Path | None,
    library: Path | None,
) -> None:
    """Check FILE's mesh and license, copy it to <library>/<slug>/ and write design.toml."""
    target = _target(config, library)
    record = DesignRecord(
        name=name,
        author=author,
        license=license_id,
        version=version,
        mesh=file.name,
        description=description,
        tags=_tags(tags),
        remix_of=remix_of,
        source_url=source_url,
    )
    added = add_design(file, slug, record, target)
    _report_added(added.design, added.notes)


@designs.command("remix")
@click.argument("parent")
@click.argument("new_slug")
@click.option("--file", "file", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True)
@click.option("--author", required=True)
@click.option("--license", "license_id", default=None, help="default: the parent's license")
@click.option("--version", "version", default="1.0", show_default=True)
@click.option("--description", default="")
@library_options
def remix_command(
    parent: str,
    new_slug: str,
    file: Path,
    name: str,
    author: str,
    license_id: str | None,
    version: str,
    description: str,
    config: Path | None,
    library: Path | None,
) -> None:
    """Add FILE as NEW_SLUG, a remix of PARENT, if PARENT's license allows it."""
    added = remix_design(
        parent,
        new_slug,
        file,
        name,
        author,
        license_id,
        version=version,
        description=description,
        directory=_target(config, library),
    )
    _report_added(added.design, added.notes)


@designs.command("check")
@click.argument("design")
@click.option("--profile", "profile_id", default=None, help="machine profile, e.g. prusa_mini")
@click.option("--max-triangles", default=MAX_TRIANGLES, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_options
def check_command(
    design: str,
    profile_id: str | None,
    max_triangles: int,
    as_json: bool,
    config: Path | None,
    library: Path | None,
) -> None:
    """Check DESIGN's mesh (and fit in --profile); exit status 1 when it is refused."""
    found = resolve_design(design, user_library(config, library))
    profile = load_profile(profile_id) if profile_id else None
    try:
        report: MeshReport | None = check_mesh(load_mesh(found.mesh_path), profile, max_triangles)
        refusal: MeshError | None = report.error() if report and not report.ok else None
    except MeshError as exc:
        report, refusal = None, exc
    if as_json:
        data: dict[str, Any] = {"design": found.slug, "profile": profile_id}
        data.update(report.to_dict() if report else {"ok": False, "facts": None, "notes": []})
        if refusal is not None:
            data["reason"] = refusal.reason
            data["error"] = str(refusal)
        _echo_json(data)
    else:
        _print_check(found, report, refusal)
    if refusal is not None:
        sys.exit(1)


def _print_check(found: Design, report: MeshReport | None, refusal: MeshError | None) -> None:
    click.echo(f"{found.slug}: {found.mesh_path.name}")
    if report is not None:
        for line in _facts_lines(report.facts):
            click.echo(f"  {line}")
        after = report.repaired
        if report.notes:
            click.echo(
                f"  after repair: {after.triangles} triangles, {after.bodies} bodies, "
                f"{after.open_edges} open edges, {after.nonmanifold_edges} non-manifold edges"
            )
        for note in report.notes:
            click.echo(f"  repair: {note}")
        for problem in report.problems:
            click.echo(f"  problem ({problem.reason}): {problem.message}")
    if refusal is None:
        click.echo("ok: the mesh can be sliced")
    else:
        click.echo(f"refused ({refusal.reason}): {refusal}")


@designs.command("credits")
@click.argument("design")
@library_options
def credits_command(design: str, config: Path | None, library: Path | None) -> None:
    """The attribution chain of DESIGN: itself, then every ancestor it remixes."""
    folder = user_library(config, library)
    chain = credits(resolve_design(design, folder), folder)
    for depth, credit in enumerate(chain):
        prefix = "" if depth == 0 else "  " * (depth - 1) + "remix of: "
        click.echo(prefix + credit.line())
    for credit in non_commercial_in(chain):
        click.echo(f"non-commercial: {credit.slug} is {credit.license}; no commercial use")
