"""``verify``: one pass gives exactly what ``check`` and ``analyse`` give, on real slicer output
for FDM and on CNC, safe and unsafe."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabnet.errors import GcodeError
from fabnet.gcode import analyse, check, verify
from fabnet.profiles import load_materials, load_profile

DATA = Path(__file__).parents[1] / "data" / "gcode"
MK3S = load_profile("prusa_mk3s")
SHAPEOKO = load_profile("shapeoko3")
PETG = load_materials().fdm["petg"]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.gcode.gz")), ids=lambda p: p.name)
def test_one_pass_equals_check_and_analyse_on_every_fixture(path: Path) -> None:
    got = verify(path, MK3S, PETG)
    assert list(got.violations) == check(path, MK3S)
    assert got.analysis == analyse(path, MK3S, PETG)
    assert got.safe == (not got.violations)


def test_an_unsafe_file_is_both_flagged_and_analysed() -> None:
    text = "M104 S215\nG1 X10 Y10 E1 F1200\nG1 X251 Y10 E2\nM104 S400\n;LAYER_CHANGE\n"
    got = verify(text, MK3S)
    assert [(v.line_no, str(v.rule)) for v in got.violations] == [
        (3, "out-of-bounds"),
        (4, "over-temperature"),
    ]
    assert not got.safe
    assert got.analysis == analyse(text, MK3S)
    assert got.analysis.max_hotend_c == 400 and got.analysis.layers == 1


def test_cnc_file_on_the_cnc_profile_and_on_a_printer() -> None:
    text = "G21\nG90\nM3 S12000\nG0 X10 Y10 Z5\nG1 Z-1 F300\nG1 X50 F800\nM5\n"
    on_cnc, on_printer = verify(text, SHAPEOKO), verify(text, MK3S)
    assert list(on_cnc.violations) == check(text, SHAPEOKO) == []
    assert on_cnc.analysis == analyse(text, SHAPEOKO)
    assert list(on_printer.violations) == check(text, MK3S) != []


def test_unparseable_line_names_its_number() -> None:
    with pytest.raises(GcodeError, match="line 2"):
        verify("G1 X1\nG1 X@@\n", MK3S)
