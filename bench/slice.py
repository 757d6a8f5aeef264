"""Slicing benchmark: the built-in slicer against PrusaSlicer and CuraEngine on the shared models.

Each slice runs in a fresh child process so wall time and peak memory are its own.
Run: ``.venv/bin/python bench/slice.py [--models cube,benchy] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "tests" / "data" / "models"
SLICERS = ("builtin", "prusaslicer", "curaengine")
PROFILES = ("prusa_mk3s", "voron24_350")  # the first one the model fits
MATERIAL = "PLA"
CHILD_TIMEOUT_S = 900.0
FIT_MARGIN_MM = 10.0
ALIASES = {"cube": "cube_xyz_20mm", "conveyor": "conveyor_broken_x0.1", "idler": "extruder_idler"}


@dataclass(frozen=True)
class Run:
    """One slice measured in a child: slicer wall time (s), peak RSS (MB), grams, layers."""

    model: str
    profile: str
    slicer: str
    wall_s: float
    peak_mb: float
    grams: float
    own_grams: float | None
    layers: int
    error: str = ""


def child(slicer_name: str, stl: Path, profile_id: str, settings_json: str, out: Path) -> None:
    """Slice ``stl`` in this process and write a JSON result to ``out`` (child side)."""
    import trimesh

    import fabnet.gcode
    from fabnet.errors import FabnetError
    from fabnet.profiles import load_materials, load_profile
    from fabnet.slicing.base import SliceSettings
    from fabnet.slicing.external import SlicerEstimate
    from fabnet.slicing.registry import get_slicer

    wrap_dir = Path(tempfile.mkdtemp(prefix="fabnet-bench-wrap-"))
    mem_file = wrap_dir / "peak_kb"
    search_path = None
    if slicer_name != "builtin":
        search_path = _time_wrappers(slicer_name, wrap_dir, mem_file)
    profile = load_profile(profile_id)
    material = load_materials().get(MATERIAL)
    mesh = trimesh.load(stl, force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    settings = SliceSettings(**json.loads(settings_json))
    result: dict[str, object] = {}
    started = time.perf_counter()
    try:
        sliced = get_slicer(slicer_name, search_path).slice(mesh, profile, material, settings)
        result["wall_s"] = time.perf_counter() - started
        analysis = fabnet.gcode.analyse(sliced.gcode, profile, material)  # type: ignore[arg-type]
        result["grams"] = analysis.grams
        result["layers"] = analysis.layers
        result["own_grams"] = SlicerEstimate.from_notes(sliced.notes).grams
    except FabnetError as exc:
        result["wall_s"] = time.perf_counter() - started
        result["error"] = f"{type(exc).__name__}: {exc}"
    own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # an external slicer's peak is its binary's (from /usr/bin/time, since a forked child's
    # ru_maxrss starts at its parent's size); the built-in one's is this whole process's
    tool_kb = float(mem_file.read_text().split()[-1]) if mem_file.exists() else 0.0
    result["peak_mb"] = (own_kb if slicer_name == "builtin" else tool_kb) / 1024
    result["python_mb"] = own_kb / 1024
    shutil.rmtree(wrap_dir, ignore_errors=True)
    out.write_text(json.dumps(result))


def _time_wrappers(slicer_name: str, wrap_dir: Path, mem_file: Path) -> str:
    """A PATH holding a wrapper per binary name that runs the real one under /usr/bin/time."""
    from fabnet.slicing import curaengine, prusaslicer

    names = prusaslicer.BINARIES if slicer_name == "prusaslicer" else curaengine.BINARIES
    for name in names:
        real = shutil.which(name)
        if real is None:
            continue
        wrapper = wrap_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/time -f %M -o "{mem_file}" "{real}" "$@"\n')
        wrapper.chmod(0o755)
    return str(wrap_dir)


def measure(slicer: str, model: str, profile: str, stl: Path, settings: dict[str, object]) -> Run:
    """Run one slice in a fresh child process and read back its result."""
    with tempfile.TemporaryDirectory(prefix="fabnet-bench-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [
            sys.executable,
            __file__,
            "--child",
            slicer,
            str(stl),
            profile,
            json.dumps(settings),
            str(out),
        ]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return Run(model, profile, slicer, CHILD_TIMEOUT_S, 0, 0, None, 0, "timed out")
        if not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return Run(model, profile, slicer, 0, 0, 0, None, 0, f"crashed: {tail[0]}")
        data = json.loads(out.read_text())
    return Run(
        model=model,
        profile=profile,
        slicer=slicer,
        wall_s=float(data["wall_s"]),
        peak_mb=float(data["peak_mb"]),
        grams=float(data.get("grams", 0.0)),
        own_grams=data.get("own_grams"),
        layers=int(data.get("layers", 0)),
        error=str(data.get("error", "")),
    )


def prepare(path: Path, work: Path) -> tuple[str, Path] | str:
    """(profile id, prepared STL) for the model, or the reason it was refused."""
    from fabnet.errors import MeshError
    from fabnet.library.mesh import prepare_mesh
    from fabnet.profiles import load_profile

    try:
        prepared = prepare_mesh(path)
    except MeshError as exc:
        return f"refused ({exc.reason}): {exc}"
    size = tuple(float(v) for v in prepared.mesh.extents)
    for profile_id in PROFILES:
        volume = load_profile(profile_id).volume
        # unrotated, with room for the skirt: the external adapters do not rotate parts
        if size[0] + FIT_MARGIN_MM <= volume.x_mm and size[1] + FIT_MARGIN_MM <= volume.y_mm:
            stl = work / f"{path.stem}.stl"
            prepared.mesh.export(file_obj=str(stl), file_type="stl")
            return profile_id, stl
    return f"refused: {size[0]:.0f} x {size[1]:.0f} x {size[2]:.0f} mm fits none of {PROFILES}"


def best(runs: list[Run]) -> Run:
    """Median wall time and the largest peak memory of repeated runs of one slice."""
    ok = [r for r in runs if not r.error] or runs
    wall = statistics.median(r.wall_s for r in ok)
    return Run(**{**ok[0].__dict__, "wall_s": wall, "peak_mb": max(r.peak_mb for r in ok)})


def ratio(a: Run | None, b: Run | None, field: str) -> str:
    if a is None or b is None or a.error or b.error or not getattr(b, field):
        return "-"
    return f"{getattr(a, field) / getattr(b, field):.2f}"


def report(results: dict[str, dict[str, Run]], refused: dict[str, str]) -> None:
    """Print the per-slice table, the ratios and the summary against the targets."""
    print(
        f"{'model':22} {'profile':12} {'slicer':12} {'wall s':>8} {'peak MB':>8} "
        f"{'g (ours)':>8} {'g (own)':>8} {'layers':>6}  error"
    )
    for model, runs in results.items():
        for run in runs.values():
            own = f"{run.own_grams:.2f}" if run.own_grams is not None else "-"
            print(
                f"{model:22} {run.profile:12} {run.slicer:12} {run.wall_s:8.2f} {run.peak_mb:8.1f} "
                f"{run.grams:8.2f} {own:>8} {run.layers:6}  {run.error[:70]}"
            )
    for model, reason in refused.items():
        print(f"{model:22} {reason}")
    print()
    print(
        f"{'model':22} {'time b/ps':>9} {'time b/cu':>9} {'mem b/ps':>9} {'mem b/cu':>9} {'g b/ps':>7} {'g b/cu':>7}"
    )
    beat_ps = within_cu = compared = 0
    for model, runs in results.items():
        b, ps, cu = runs.get("builtin"), runs.get("prusaslicer"), runs.get("curaengine")
        print(
            f"{model:22} {ratio(b, ps, 'wall_s'):>9} {ratio(b, cu, 'wall_s'):>9} "
            f"{ratio(b, ps, 'peak_mb'):>9} {ratio(b, cu, 'peak_mb'):>9} "
            f"{ratio(b, ps, 'grams'):>7} {ratio(b, cu, 'grams'):>7}"
        )
        if b and ps and cu and not (b.error or ps.error or cu.error):
            compared += 1
            beat_ps += b.wall_s < ps.wall_s
            within_cu += b.wall_s <= 2 * cu.wall_s
    print()
    print(
        f"summary: builtin beats PrusaSlicer on {beat_ps}/{compared} models; "
        f"within 2x of CuraEngine on {within_cu}/{compared} models "
        f"(targets: beat PrusaSlicer, within 2x of CuraEngine)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models",
        help="comma-separated model names (default: all); aliases: " + ", ".join(ALIASES),
    )
    parser.add_argument("--slicers", default=",".join(SLICERS), help="comma-separated slicers")
    parser.add_argument("--repeat", type=int, default=1, help="runs per slice (median time)")
    parser.add_argument(
        "--child",
        nargs=5,
        metavar=("SLICER", "STL", "PROFILE", "SETTINGS", "OUT"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.child:
        slicer, stl, profile, settings, out = args.child
        child(slicer, Path(stl), profile, settings, Path(out))
        return 0
    names = sorted(p.stem for p in MODELS_DIR.glob("*.stl"))
    if args.models:
        names = [ALIASES.get(n.strip(), n.strip()) for n in args.models.split(",")]
    settings = {"layer_height_mm": 0.2, "infill_percent": 20.0, "walls": 2}
    results: dict[str, dict[str, Run]] = {}
    refused: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fabnet-bench-models-") as tmp:
        for name in names:
            prepared = prepare(MODELS_DIR / f"{name}.stl", Path(tmp))
            if isinstance(prepared, str):
                refused[name] = prepared
                continue
            profile, stl = prepared
            results[name] = {}
            for slicer in args.slicers.split(","):
                runs = [measure(slicer, name, profile, stl, settings) for _ in range(args.repeat)]
                results[name][slicer] = best(runs)
                print(f"# {name} {slicer}: {results[name][slicer].wall_s:.2f} s", file=sys.stderr)
    report(results, refused)
    return 0


if __name__ == "__main__":
    sys.exit(main())
