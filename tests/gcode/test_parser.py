"""The parser reads every dialect fabnet meets and refuses garbage with a line number."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fabnet.errors import GcodeError
from fabnet.gcode.parser import COMMENT, extended_args, parse, parse_line

DATA = Path(__file__).parents[1] / "data" / "gcode"


def one(line: str) -> tuple[str, dict[str, float]]:
    (cmd,) = parse_line(line)
    return cmd.command, cmd.params


@pytest.mark.parametrize(
    ("line", "command", "params"),
    [
        ("G1 X10 Y20.5 E.3 F1800", "G1", {"X": 10.0, "Y": 20.5, "E": 0.3, "F": 1800.0}),
        ("g1 x1 y-2", "G1", {"X": 1.0, "Y": -2.0}),
        ("G01X1Y2", "G1", {"X": 1.0, "Y": 2.0}),
        ("N12 G1 X0 *34", "G1", {"X": 0.0}),
        ("M104 S215 ; set temp", "M104", {"S": 215.0}),
        ("M104 T0 S200", "M104", {"T": 0.0, "S": 200.0}),
        ("G1 X5 (comment) Y6", "G1", {"X": 5.0, "Y": 6.0}),
        ("G28 X Y", "G28", {"X": 0.0, "Y": 0.0}),
        ("G1 X", "G1", {}),
        ("X5 Y6", "", {"X": 5.0, "Y": 6.0}),
        ("G28.1", "G28.1", {}),
        ("M117 Printing 50%", "M117", {}),
        ("M115 U3.11.0", "M115", {}),
        ('M862.3 P "MK3S"', "M862.3", {}),
        ("PRINT_START BED=60 EXTRUDER=215", "PRINT_START", {"BED": 60.0, "EXTRUDER": 215.0}),
        (
            "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200",
            "SET_HEATER_TEMPERATURE",
            {"TARGET": 200.0},
        ),  # fmt: skip
        ("$H", "$H", {}),
        ("$X", "$X", {}),
        ("$$", "$$", {}),
        ("$110=5000", "$110", {"=": 5000.0}),
        ("$J=G91 X1 F100", "$J", {}),
    ],
)
def test_dialects(line: str, command: str, params: dict[str, float]) -> None:
    assert one(line) == (command, params)


def test_several_commands_on_one_line_keep_their_words() -> None:
    cmds = parse_line("G90 G0 X1 Y2 M3 S12000", 7)
    assert [(c.command, c.params, c.line_no) for c in cmds] == [
        ("G90", {}, 7),
        ("G0", {"X": 1.0, "Y": 2.0}, 7),
        ("M3", {"S": 12000.0}, 7),
    ]


def test_klipper_string_arguments_are_available() -> None:
    raw = "SET_HEATER_TEMPERATURE HEATER=heater_bed TARGET=60"
    assert extended_args(raw) == {"HEATER": "heater_bed", "TARGET": "60"}


def test_comments_and_blank_lines() -> None:
    assert parse_line("   ") == []
    assert parse_line("; just a comment") == []
    assert parse_line("(GRBL comment)") == []
    assert [c.command for c in parse_line(";LAYER:3", comments=True)] == [COMMENT]


@pytest.mark.parametrize(
    "line",
    ["G1 X1.2.3", "@@@ garbage", "G1 (unterminated", "G1 X" + "9" * 400, "G1 X-", "G X1",
     "G1 X" + "1" * 20, "Ä§ü"],
)  # fmt: skip
def test_malformed_lines_raise_with_line_number(line: str) -> None:
    text = f"G28\nG1 X1\n{line}\nG1 X2\n"
    with pytest.raises(GcodeError) as err:
        list(parse(text))
    assert err.value.line_no == 3
    assert "line 3" in str(err.value)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.gcode"
    path.write_bytes(b"\x00\x01\x02G1 X1\n")
    with pytest.raises(GcodeError):
        list(parse(path))


def test_gz_and_plain_files_read_the_same(tmp_path: Path) -> None:
    gz = DATA / "cube_xyz_20mm_slic3r.gcode.gz"
    plain = tmp_path / "cube.gcode"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    assert list(parse(gz)) == list(parse(plain))


def test_fast_path_agrees_with_general_path() -> None:
    text = gzip.decompress((DATA / "cube_xyz_20mm_prusaslicer.gcode.gz").read_bytes()).decode()
    lines = text.splitlines()[:3000]
    fast = list(parse("\n".join(lines)))
    general = [c for n, raw in enumerate(lines, 1) for c in parse_line(raw, n)]
    assert fast == general
