"""The vectorised sectioner against shapes whose cross-sections are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import trimesh

from fabnet.errors import InvalidInput
from fabnet.slicing.fdm.placement import arrange
from fabnet.slicing.fdm.regions import PathKind, line_fill
from fabnet.slicing.fdm.sections import layer_heights, section_layers


def _annulus(r_min: float, r_max: float, height: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.annulus(r_min=r_min, r_max=r_max, height=height, sections=256)
    mesh.apply_translation([0.0, 0.0, height / 2.0])
    return mesh


def test_box_sections_are_its_footprint_at_every_layer() -> None:
    box = trimesh.creation.box(extents=[20.0, 10.0, 5.0])
    box.apply_translation([10.0, 5.0, 2.5])
    solids = section_layers(box, layer_heights(5.0, 0.2))
    assert len(solids) == 25
    assert all(s.area == pytest.approx(200.0, abs=1e-6) for s in solids)
    assert solids[0].bounds == pytest.approx((0.0, 0.0, 20.0, 10.0))


def test_a_hole_stays_a_hole() -> None:
    solids = section_layers(_annulus(5.0, 10.0, 2.0), layer_heights(2.0, 0.2))
    expected = math.pi * (10.0**2 - 5.0**2)
    for solid in solids:
        assert solid.area == pytest.approx(expected, rel=2e-3)
        assert len(shapely.get_parts(solid)) == 1
        assert len(solid.interiors) == 1


def test_an_island_inside_a_hole_is_solid() -> None:
    outer = _annulus(10.0, 15.0, 2.0)
    inner = _annulus(3.0, 6.0, 2.0)
    both = trimesh.util.concatenate([outer, inner])
    solids = section_layers(both, layer_heights(2.0, 0.2))
    expected = math.pi * (15.0**2 - 10.0**2 + 6.0**2 - 3.0**2)
    assert solids[3].area == pytest.approx(expected, rel=2e-3)
    assert len(shapely.get_parts(solids[3])) == 2


def test_overlapping_bodies_unite() -> None:
    a = trimesh.creation.box(extents=[10.0, 10.0, 2.0])
    b = a.copy()
    b.apply_translation([5.0, 0.0, 0.0])
    both = trimesh.util.concatenate([a, b])
    both.apply_translation([0.0, 0.0, 1.0])
    solids = section_layers(both, layer_heights(2.0, 0.5))
    assert solids[1].area == pytest.approx(150.0, abs=1e-6)


def test_line_fill_covers_a_square_at_the_spacing() -> None:
    square = shapely.box(0.0, 0.0, 10.0, 10.0)
    (lines,) = line_fill(square, 1.0, 0.0, PathKind.SOLID_INFILL)
    assert len(lines) == 10  # y = 0 .. 9: an edge holds its lower end, not its upper one
    assert all(np.allclose(np.abs(p.points[1, 0] - p.points[0, 0]), 10.0) for p in lines)
    assert lines[0].points[0, 0] < lines[0].points[1, 0]
    assert lines[1].points[0, 0] > lines[1].points[1, 0]  # serpentine: every other one reversed
    (diagonal,) = line_fill(square, 1.0, 45.0, PathKind.SPARSE_INFILL)
    total = sum(float(np.hypot(*(p.points[1] - p.points[0]))) for p in diagonal)
    assert total == pytest.approx(100.0, rel=0.1)  # area / spacing


def test_arrange_refuses_what_does_not_fit_and_names_sizes() -> None:
    placement = arrange((182.4, 218.9), 1, (250.0, 210.0), 4.5)
    assert placement.rotated
    with pytest.raises(InvalidInput, match=r"3 part\(s\) of 182.4 x 218.9 mm"):
        arrange((182.4, 218.9), 3, (250.0, 210.0), 4.5)


def test_serpentine_runs_do_not_jump_across_a_gap() -> None:
    u_shape = shapely.difference(
        shapely.box(0.0, 0.0, 30.0, 20.0), shapely.box(10.0, 5.0, 20.0, 20.0)
    )
    runs = line_fill(u_shape, 1.0, 0.0, PathKind.SPARSE_INFILL)
    assert len(runs) == 2  # the base and one arm, then the other arm
    assert sum(len(run) for run in runs) == 5 + 2 * 15
    for run in runs:
        for a, b in zip(run, run[1:], strict=False):
            hop = shapely.LineString([a.points[-1], b.points[0]])
            assert shapely.covered_by(hop, shapely.buffer(u_shape, 1e-6)), hop
