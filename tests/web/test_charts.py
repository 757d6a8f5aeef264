"""Server-drawn pictures: charts, design thumbnails from real meshes, G-code layer previews."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fabnet.core.ledger import SeriesPoint, Totals
from fabnet.errors import NotFound
from fabnet.library.design import load_design
from fabnet.profiles import load_profile
from fabnet.web.charts import (
    WALL_MAX_TILES,
    WallTile,
    area_chart,
    bar_chart,
    machine_wall,
    progress_bar,
)
from fabnet.web.layer_preview import build_model, layer_svg
from fabnet.web.thumbnails import MAX_POLYGONS, Thumbnails, cluster_decimate, render_svg

GCODE = Path(__file__).resolve().parents[1] / "data" / "gcode"
SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML or ParseError


def test_area_chart_stacks_materials_and_writes_the_total() -> None:
    points = [
        SeriesPoint(T0 + timedelta(minutes=5 * i), key, Totals(1, 1, grams, 0.1))
        for i in range(4)
        for key, grams in (("PLA", 10.0 * i), ("PETG", 2.5))
    ]
    root = parse(str(area_chart(points, title="Grams", unit="g")))
    total = root.find(f".//{SVG}text[@class='chart-total']")
    assert total is not None and total.text == "70.0 g"  # 0+10+20+30 PLA, 4 x 2.5 PETG
    bands = root.findall(f".//{SVG}polygon[@class='band']")
    assert sorted(b.get("data-key") or "" for b in bands) == ["PETG", "PLA"]
    pla = next(b for b in bands if b.get("data-key") == "PLA")
    ys = [float(p.split(",")[1]) for p in (pla.get("points") or "").split()]
    assert min(ys) < max(ys)  # the PLA band rises over time


def test_area_chart_without_data_says_so() -> None:
    svg = str(area_chart([], title="Grams", unit="g"))
    parse(svg)
    assert "nothing finished yet" in svg and ">0.0 g<" in svg


def test_bar_chart_scales_bars_to_the_largest_value() -> None:
    root = parse(str(bar_chart([("PLA", 8.0), ("PETG", 2.0)], unit="parts")))
    widths = {r.get("data-key"): float(r.get("width") or 0) for r in root.iter(f"{SVG}rect")}
    assert widths["PLA"] == pytest.approx(4 * widths["PETG"])


def test_progress_bar_clamps_and_labels() -> None:
    assert "100 %" in progress_bar(1.7) and "0 %" in progress_bar(-1)
    assert 'width="80.0"' in progress_bar(0.5, width=160)


def test_machine_wall_colours_states_and_caps_the_number_of_tiles() -> None:
    tiles = [WallTile("ada/mk3s", "busy", "fdm", "t1", 0.25), WallTile("bo/x", "error", "fdm")]
    root = parse(str(machine_wall(tiles)))
    states = {g.get("data-machine"): g.get("data-state") for g in root.iter(f"{SVG}g")}
    assert states == {"ada/mk3s": "busy", "bo/x": "error"}
    many = [WallTile(f"m/{i}", "idle", "fdm") for i in range(WALL_MAX_TILES + 5)]
    svg = str(machine_wall(many))
    assert svg.count('class="tile"') == WALL_MAX_TILES and "and 5 more machines" in svg


def test_cluster_decimation_merges_vertices_and_drops_collapsed_triangles() -> None:
    # two triangles sharing an edge, plus a sliver that collapses at a coarse grid
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [10, 10, 0], [0.01, 0.01, 0]], float)
    f = np.array([[0, 1, 2], [1, 3, 2], [0, 4, 1]])
    dv, df = cluster_decimate(v, f, grid=4)
    assert len(dv) == 4 and len(df) == 2


def test_benchy_thumbnail_is_decimated_cached_and_drawn_back_to_front(tmp_path: Path) -> None:
    design = load_design("3dbenchy")
    thumbs = Thumbnails(tmp_path)
    started = time.monotonic()
    svg = thumbs.svg(design)
    first_s = time.monotonic() - started
    root = parse(svg)
    paths = root.findall(f"{SVG}path")
    assert 500 < len(paths) <= MAX_POLYGONS, len(paths)  # 225k triangles in the file
    assert len(svg) < 200_000
    assert list(tmp_path.glob(f"{design.sha256}-*.svg")), "not cached on disk"
    started = time.monotonic()
    assert Thumbnails(tmp_path).svg(design) == svg  # a new process reads the disk cache
    assert time.monotonic() - started < first_s / 5
    assert first_s < 10


def test_cube_thumbnail_shows_three_shaded_faces() -> None:
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    f = np.array(
        [[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
         [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]]
    )  # fmt: skip
    root = parse(render_svg(v, f))
    fills = {p.get("fill") for p in root.findall(f"{SVG}path")}
    assert len(root.findall(f"{SVG}path")) == 6  # back faces culled
    assert len(fills) == 3  # top, front and side lit differently


def test_layer_preview_of_a_prusaslicer_file() -> None:
    model = build_model(GCODE / "cube_xyz_20mm_prusaslicer.gcode.gz", load_profile("prusa_mk3s"))
    assert model.layers == 100  # 20 mm at 0.2 mm
    svg = layer_svg(model, 50)
    root = parse(svg)
    assert root.get("data-z") == "10.20"
    work = root.find(f"{SVG}path[@class='work']")
    travel = root.find(f"{SVG}path[@class='travel']")
    assert work is not None and (work.get("d") or "").count("L") > 50
    assert travel is not None and travel.get("d")
    # the frame follows the part, not the purge line: the cube fills much of the picture
    xs = [float(n) for n in re.findall(r"[ML]([\d.]+) ", work.get("d") or "")]
    assert max(xs) - min(xs) > 200
    with pytest.raises(NotFound, match="layer 100 not found"):
        layer_svg(model, 100)


def test_layer_preview_of_a_cnc_file_draws_cuts_apart_from_rapids() -> None:
    text = "G21\nG90\nG0 Z5\nG0 X0 Y0\nG1 Z-1 F300\nG1 X20 F600\nG1 Y20\nG0 Z5\nG0 X40 Y40\n"
    model = build_model(text, load_profile("shapeoko3"))
    assert model.layers == 1
    svg = layer_svg(model, 0)
    assert svg.count("L") >= 3 and 'class="work"' in svg
