"""What the PrusaSlicer and CuraEngine adapters share: finding and running a slicer binary,
placing copies on the bed, the feature speeds we ask for, and the slicer's own estimate.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fabnet.errors import InvalidInput, ToolFailed, ToolMissing
from fabnet.lifetime import tied_run

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import trimesh

    from fabnet.profiles import FdmMaterial, FdmProfile

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
COPY_GAP_MM = 6.0  # space between copies on the bed (PrusaSlicer's default min_object_distance)
BED_MARGIN_MM = 3.0  # copies stay this far inside the bed edges (room for the skirt)
OUTPUT_TAIL_CHARS = 3000
MIN_GCODE_MOVES = 20  # fewer G1 lines than this means the slicer produced nothing useful
NULL_EXTRUSION_MM = 0.001  # an extrusion this small that does not move X/Y is noise

_ERROR_LINE_RE = re.compile(r"\b(error|failed|invalid|cannot|can't|unable)\b", re.IGNORECASE)
_NOTE_RE = re.compile(r"^(time_s|filament_mm|grams)=([0-9.eE+-]+)$")


@dataclass(frozen=True)
class ToolRun:
    """One finished run of an external program."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float


@dataclass(frozen=True)
class SlicerEstimate:
    """A slicer's own figures for its G-code: print time in s, filament in mm and g (None = not given)."""

    time_s: float | None = None
    filament_mm: float | None = None
    grams: float | None = None

    def as_notes(self) -> tuple[str, ...]:
        """The estimate as ``key=value`` notes for ``SliceResult.notes``."""
        pairs = (("time_s", self.time_s), ("filament_mm", self.filament_mm), ("grams", self.grams))
        return tuple(f"{key}={value:.6g}" for key, value in pairs if value is not None)

    @classmethod
    def from_notes(cls, notes: Sequence[str]) -> SlicerEstimate:
        """Read back what ``as_notes`` wrote; other notes are ignored."""
        found: dict[str, float] = {}
        for note in notes:
            match = _NOTE_RE.match(note)
            if match:
                found[match.group(1)] = float(match.group(2))
        return cls(found.get("time_s"), found.get("filament_mm"), found.get("grams"))


@dataclass(frozen=True)
class FeatureSpeeds:
    """Print speeds per feature in mm/s, the same for every external slicer we drive."""

    perimeter: float
    external_perimeter: float
    infill: float
    solid_infill: float
    top_bottom: float
    travel: float
    first_layer: float
    z_travel: float
    retract: float


def feature_speeds(
    profile: FdmProfile, material: FdmMaterial, layer_height_mm: float
) -> FeatureSpeeds:
    """Conservative feature speeds (mm/s) capped by the profile's max XY feed and the material's flow.

    Retraction runs at the profile's retract speed, capped by its max E feed (firmware would
    clamp it anyway, and the safety check flags it).

    The cap is the material's max volumetric flow (mm³/s) over the bead's cross-section
    (nozzle width × layer height, mm²).
    """
    xy_max = min(profile.max_feed_mm_s.x, profile.max_feed_mm_s.y)
    bead_mm2 = profile.nozzle_mm * 1.125 * layer_height_mm
    flow_max = material.max_volumetric_mm3_s / bead_mm2 if bead_mm2 > 0 else xy_max

    def cap(speed: float) -> float:
        return round(min(speed, xy_max, flow_max), 1)

    return FeatureSpeeds(
        perimeter=cap(45.0),
        external_perimeter=cap(25.0),
        infill=cap(80.0),
        solid_infill=cap(60.0),
        top_bottom=cap(40.0),
        travel=round(min(150.0, xy_max), 1),
        first_layer=cap(20.0),
        z_travel=round(min(10.0, profile.max_feed_mm_s.z), 1),
        retract=round(min(profile.retract_speed_mm_s, profile.max_feed_mm_s.e), 1),
    )


def line_width_mm(profile: FdmProfile) -> float:
    """The extrusion width (mm) asked of every slicer: 1.125 × nozzle, PrusaSlicer's own default."""
    return round(profile.nozzle_mm * 1.125, 3)


def first_layer_height_mm(profile: FdmProfile, layer_height_mm: float) -> float:
    """First layer height (mm): at least 0.2 for adhesion, at most 0.75 × nozzle."""
    return round(min(max(layer_height_mm, 0.2), 0.75 * profile.nozzle_mm), 3)


def find_tool(names: Sequence[str], install_hint: str, search_path: str | None = None) -> str:
    """The absolute path of the first of ``names`` on ``search_path`` (default: ``$PATH``).

    Raises ToolMissing naming the program and how to install it.
    """
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise ToolMissing(f"{names[0]} is not installed (searched PATH={path!r}); {install_hint}")


def run_tool(
    argv: Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ToolRun:
    """Run ``argv`` to completion with stdin closed; ToolFailed on timeout or a non-zero exit."""
    started = time.monotonic()
    full_env = {**os.environ, **(env or {})}
    try:
        proc = tied_run(  # a slicer never outlives the hub that asked for it
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            env=full_env,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        raise ToolFailed(f"{argv[0]} timed out after {timeout_s:g} s", tail(output)) from exc
    except OSError as exc:
        raise ToolFailed(f"{argv[0]} could not be started: {exc}") from exc
    run = ToolRun(
        tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started
    )
    log.debug("%s exited %d after %.2f s", argv[0], run.returncode, run.wall_s)
    if run.returncode != 0:
        raise ToolFailed(
            f"{Path(argv[0]).name} exited with status {run.returncode}: "
            f"{last_line(run.stderr or run.stdout)}",
            tail(run.stdout + run.stderr),
        )
    return run


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def tail(text: str, chars: int = OUTPUT_TAIL_CHARS) -> str:
    """The last ``chars`` characters of ``text``."""
    return text[-chars:]


def last_line(text: str) -> str:
    """The first line of ``text`` that mentions an error, else its last non-blank line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if _ERROR_LINE_RE.search(line):
            return line
    return lines[-1] if lines else ""


def count_moves(gcode: str) -> int:
    """How many G0/G1 lines ``gcode`` holds."""
    return len(re.findall(r"^G[01][ \t]", gcode, flags=re.MULTILINE))


def drop_null_extrusions(gcode: str) -> tuple[str, int]:
    """``gcode`` without moves that extrude under ``NULL_EXTRUSION_MM`` (relative E) in place.

    PrusaSlicer ends some perimeters with such a move (e.g. ``G1 X109.142 Y103.01 E.00002`` at
    the current X/Y); with no X/Y travel its feed applies to E alone and can exceed the
    profile's max E feed. Returns the cleaned text and how many lines were dropped.
    """
    x = y = None
    absolute = True
    kept: list[str] = []
    dropped = 0
    for line in gcode.splitlines(keepends=True):
        code = line.split(";", 1)[0].split()
        if code and code[0] in ("G90", "G91"):
            absolute = code[0] == "G90"
        if not code or code[0] not in ("G0", "G1") or not absolute:
            kept.append(line)
            continue
        words = {w[0]: w[1:] for w in code[1:] if w}
        try:
            new_x = float(words["X"]) if "X" in words else x
            new_y = float(words["Y"]) if "Y" in words else y
            e = float(words["E"]) if "E" in words else None
        except ValueError:
            kept.append(line)
            continue
        if (
            e is not None
            and abs(e) < NULL_EXTRUSION_MM
            and (new_x, new_y) == (x, y)
            and "Z" not in words
        ):
            dropped += 1
        else:
            kept.append(line)
        x, y = new_x, new_y
    return "".join(kept), dropped


def fill_placeholders(text: str, material: FdmMaterial) -> str:
    """A profile's start/end G-code with ``{nozzle_first_c}`` and ``{bed_first_c}`` filled (°C)."""
    return text.replace("{nozzle_first_c}", f"{material.first_layer_nozzle_c:g}").replace(
        "{bed_first_c}", f"{material.first_layer_bed_c:g}"
    )


def write_stl(mesh: trimesh.Trimesh, path: Path) -> Path:
    """Write ``mesh`` (already prepared, mm) as binary STL to ``path``."""
    mesh.export(file_obj=str(path), file_type="stl")
    return path


def copy_offsets(
    size_xy_mm: tuple[float, float], quantity: int, profile: FdmProfile
) -> list[tuple[float, float]]:
    """Centre offsets (mm, relative to the bed centre) for ``quantity`` copies in a near-square grid.

    Raises InvalidInput when one copy, or the grid of all copies, does not fit the bed.
    """
    sx, sy = size_xy_mm
    usable_x = profile.volume.x_mm - 2 * BED_MARGIN_MM
    usable_y = profile.volume.y_mm - 2 * BED_MARGIN_MM
    if sx > usable_x or sy > usable_y:
        raise InvalidInput(
            f"part {sx:.1f} x {sy:.1f} mm does not fit the {profile.id} bed "
            f"{profile.volume.x_mm:g} x {profile.volume.y_mm:g} mm"
        )
    pitch_x, pitch_y = sx + COPY_GAP_MM, sy + COPY_GAP_MM
    max_cols = max(1, int((usable_x + COPY_GAP_MM) // pitch_x))
    max_rows = max(1, int((usable_y + COPY_GAP_MM) // pitch_y))
    if max_cols * max_rows < quantity:
        raise InvalidInput(
            f"quantity {quantity} of a {sx:.1f} x {sy:.1f} mm part does not fit the {profile.id} "
            f"bed; at most {max_cols * max_rows} fit"
        )
    cols = min(max_cols, max(1, int(round(quantity**0.5 + 0.49))))
    rows = -(-quantity // cols)
    if rows > max_rows:
        rows = max_rows
        cols = -(-quantity // rows)
    offsets = []
    for index in range(quantity):
        row, col = divmod(index, cols)
        offsets.append(((col - (cols - 1) / 2) * pitch_x, (row - (rows - 1) / 2) * pitch_y))
    return offsets


def check_height(height_mm: float, profile: FdmProfile) -> None:
    """InvalidInput when a part of ``height_mm`` is taller than the profile's Z travel."""
    if height_mm > profile.volume.z_mm:
        raise InvalidInput(
            f"part height {height_mm:.1f} mm exceeds the {profile.id} Z travel "
            f"{profile.volume.z_mm:g} mm"
        )
