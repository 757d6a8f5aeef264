"""One G-code reader for every dialect fabnet meets: Marlin/Prusa/Cura, Klipper macros, GRBL.

Yields one ``GcodeLine`` per command; comments, line numbers and checksums are stripped.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from fabnet.errors import GcodeError, InvalidInput

log = logging.getLogger(__name__)

# A line longer than this is not G-code any firmware would accept (Marlin: 96, GRBL: 80 chars).
MAX_LINE_CHARS = 4096

# Commands whose argument is free text (file names, messages), so it is not split into words.
TEXT_COMMANDS = frozenset(
    {"M23", "M28", "M29", "M30", "M32", "M33", "M115", "M117", "M118", "M862.3", "M928"}
)

COMMENT = ";"  # command of a comment-only line, yielded only with ``comments=True``

_PAREN = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r'"[^"]*"')
_LINE_NO = re.compile(r"^N\s*\d+\s*")
_CHECKSUM = re.compile(r"\*\s*\d*\s*$")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_WORD = re.compile(rf"([A-Z])\s*({_NUMBER})?")
# Words, or any other non-blank character (third group) which makes the line unparseable.
_WORD_OR_JUNK = re.compile(rf"([A-Z])\s*({_NUMBER})?|(\S)")
_LIMIT = 1e12  # no coordinate, feed or temperature is this large; bigger is a corrupt file
_EXTENDED = re.compile(r"^([A-Z_][A-Z0-9_]+)(?:\s+(.*))?$")
_MOTION = frozenset({"G0", "G1", "G2", "G3", ""})
_KEY_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\"[^\"]*\"|'[^']*'|\S+)")

# Fast path for the bulk of slicer output, ``G1 X1.5 Y2 E.03 F1800 ; comment`` in this order
# and upper case; at most 9 integer digits, so no range check is needed. Other lines take the
# general path, with the same result.
_FAST_NUMBER = r"[-+]?(?:\d{1,9}(?:\.\d*)?|\.\d+)"
_FAST = re.compile(
    rf"G([0-3]) ?(?:X({_FAST_NUMBER}) ?)?(?:Y({_FAST_NUMBER}) ?)?(?:Z({_FAST_NUMBER}) ?)?"
    rf"(?:E({_FAST_NUMBER}) ?)?(?:F({_FAST_NUMBER}) ?)?(?:;.*)?"
)
_FAST_COMMANDS = {"0": "G0", "1": "G1", "2": "G2", "3": "G3"}

_command_cache: dict[str, str] = {}


class GcodeLine(NamedTuple):
    """One command: 1-based ``line_no``, normalised ``command`` (``G1``, ``M104``, ``G28.1``,
    ``T0``, ``$H``, ``$110``, ``PRINT_START``; ``""`` for modal words like ``X5 Y6``;
    ``";"`` for a comment-only line), numeric ``params`` by upper-case letter or key (GRBL
    ``$n=v`` puts v under ``"="``), and the ``raw`` line without its newline."""

    line_no: int
    command: str
    params: dict[str, float]
    raw: str


def _command_name(letter: str, number: str) -> str:
    key = letter + number
    name = _command_cache.get(key)
    if name is None:
        value = float(number)
        name = f"{letter}{int(value)}" if value.is_integer() else f"{letter}{value:g}"
        _command_cache[key] = name
    return name


def _number(text: str, line_no: int) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > _LIMIT:
        raise GcodeError(f"number out of range: {text[:40]!r}", line_no)
    return value


def extended_args(raw: str) -> dict[str, str]:
    """KEY=VALUE arguments of a Klipper extended command line, keys upper-case, values as text."""
    text = raw.split(";", 1)[0]
    parts = text.strip().split(None, 1)
    if len(parts) < 2:
        return {}
    return {k.upper(): v.strip("\"'") for k, v in _KEY_VALUE.findall(parts[1])}


def _grbl(text: str, line_no: int, raw: str) -> GcodeLine:
    name, sep, value = text.partition("=")
    name = name.strip()
    params: dict[str, float] = {}
    if sep:
        try:
            params["="] = _number(value.strip(), line_no)
        except ValueError:
            pass  # $J=G91 X1 or $N0=G20: text, kept in raw
    return GcodeLine(line_no, name, params, raw)


def _extended(match: re.Match[str], line_no: int, raw: str) -> GcodeLine:
    params: dict[str, float] = {}
    rest = match.group(2)
    if rest:
        for key, value in _KEY_VALUE.findall(rest):
            try:
                params[key.upper()] = _number(value.strip("\"'"), line_no)
            except ValueError:
                continue  # string argument such as HEATER=extruder; see extended_args()
    return GcodeLine(line_no, match.group(1), params, raw)


def _words(text: str, line_no: int, raw: str) -> list[GcodeLine]:
    """Split ``G90 G1 X1 F300 M104 S200`` into one GcodeLine per G/M/T command."""
    out: list[GcodeLine] = []
    command = ""
    params: dict[str, float] = {}
    flags: list[str] = []
    for letter, number, junk in _WORD_OR_JUNK.findall(text):
        if junk:
            if command in TEXT_COMMANDS:
                break
            raise GcodeError(f"cannot parse {raw.strip()[:80]!r}", line_no)
        if letter in "GM" or (letter == "T" and not command):
            if command in TEXT_COMMANDS:
                break
            if not number:
                raise GcodeError(f"{letter} without a number in {raw.strip()[:80]!r}", line_no)
            if command or params:
                out.append(_finish(line_no, command, params, flags, raw))
                params, flags = {}, []
            command = _command_name(letter, number)
        elif command in TEXT_COMMANDS:
            continue
        elif number:
            value = float(number)
            if value > _LIMIT or value < -_LIMIT:
                raise GcodeError(f"number out of range: {number[:40]!r}", line_no)
            params[letter] = value
        else:
            params[letter] = 0.0
            flags.append(letter)
    out.append(_finish(line_no, command, params, flags, raw))
    return out


def _finish(
    line_no: int, command: str, params: dict[str, float], flags: list[str], raw: str
) -> GcodeLine:
    # A valueless axis word (``G1 X``) moves nothing in Marlin or GRBL; elsewhere it is a flag
    # (``G28 X`` homes X) and reads as 0.
    if flags and command in _MOTION:
        for letter in flags:
            del params[letter]
    return GcodeLine(line_no, command, params, raw)


def parse_line(raw: str, line_no: int = 1, comments: bool = False) -> list[GcodeLine]:
    """The commands on one line (usually one; none for blank or comment lines).

    Raises GcodeError (with ``line_no``) for unparseable text, unterminated ``(`` comments,
    over-long lines and non-finite or absurd numbers."""
    if len(raw) > MAX_LINE_CHARS:
        raise GcodeError(f"line longer than {MAX_LINE_CHARS} characters", line_no)
    text = raw
    if ";" in text:
        text = text[: text.index(";")]
    if "(" in text or ")" in text:
        text = _PAREN.sub(" ", text)
        if "(" in text or ")" in text:
            raise GcodeError(f"unbalanced ( ) comment in {raw.strip()[:80]!r}", line_no)
    text = text.strip()
    if not text or text == "%":
        if comments and raw.lstrip().startswith(";"):
            return [GcodeLine(line_no, COMMENT, {}, raw)]
        return []
    if text[0] == "/":  # block delete: a skippable line, still checked as if it ran
        text = text[1:].lstrip()
    if text[0] == "$":
        return [_grbl(text, line_no, raw)]
    if '"' in text:  # quoted text argument (Prusa: M862.3 P "MK3S"); kept in raw only
        text = _QUOTED.sub(" ", text)
    text = text.upper()
    if text[0] == "N":
        text = _LINE_NO.sub("", text, count=1)
    if "*" in text:
        text = _CHECKSUM.sub("", text)
    if not text:
        return []
    if len(text) > 1 and (text[1].isalpha() or text[1] == "_"):
        match = _EXTENDED.match(text)
        if match is not None:
            return [_extended(match, line_no, raw)]
    return _words(text, line_no, raw)


def parse_lines(lines: Iterable[str], comments: bool = False) -> Iterator[GcodeLine]:
    """Every command of ``lines`` (an iterable of text lines) in order; see ``parse_line``."""
    fast = _FAST.fullmatch
    names = _FAST_COMMANDS
    for line_no, raw in enumerate(lines, 1):
        if raw and raw[-1] in "\r\n":
            raw = raw.rstrip("\r\n")
        match = fast(raw)
        if match is not None:
            g, x, y, z, e, f = match.groups()
            params: dict[str, float] = {}
            if x is not None:
                params["X"] = float(x)
            if y is not None:
                params["Y"] = float(y)
            if z is not None:
                params["Z"] = float(z)
            if e is not None:
                params["E"] = float(e)
            if f is not None:
                params["F"] = float(f)
            yield GcodeLine(line_no, names[g], params, raw)
        elif raw[:1] == ";":
            if comments:
                yield GcodeLine(line_no, COMMENT, {}, raw)
        else:
            yield from parse_line(raw, line_no, comments)


def read_text(source: str | Path) -> str:
    """The G-code text of ``source``: a path (``.gz`` is decompressed) or the G-code itself.

    A ``str`` containing a newline, or not naming an existing file, is taken as G-code.
    Raises InvalidInput when a Path does not exist or is not UTF-8/Latin-1 text."""
    if isinstance(source, str) and ("\n" in source or not _is_file(source)):
        return source
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"G-code file {str(path)!r} does not exist")
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if b"\x00" in data[:65536]:
        raise GcodeError(f"{path} is binary, not G-code text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _is_file(text: str) -> bool:
    if len(text) > 4096 or not text.strip():
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False


def parse(source: str | Path, comments: bool = False) -> Iterator[GcodeLine]:
    """Every command in ``source`` (path, ``.gz`` path or G-code text); raises GcodeError."""
    return parse_lines(read_text(source).splitlines(), comments)
