"""GRBL 1.1 wire protocol as a sender sees it: line normalisation, status reports, code tables.

Tables follow gnea/grbl ``doc/csv/error_codes_en_US.csv`` and ``alarm_codes_en_US.csv``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from fabnet.errors import GcodeError

RX_BUFFER_BYTES = 127  # usable bytes of GRBL's 128-byte serial receive ring buffer
LINE_MAX_CHARS = 80  # GRBL's LINE_BUFFER_SIZE: longer lines are refused with error:11
REALTIME_BYTES = frozenset(b"?!~\x18")  # picked out of the stream by GRBL's serial ISR

STATUS_QUERY = b"?"
FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"

ERROR_CODES: dict[int, str] = {
    1: "Expected command letter: a G-code word has no letter",
    2: "Bad number format: a word's value is missing or malformed",
    3: "Invalid statement: '$' system command not recognised or supported",
    4: "Value < 0: negative value for an expected positive value",
    5: "Setting disabled: homing is not enabled in settings",
    6: "Value < 3 usec: minimum step pulse time must be greater than 3 usec",
    7: "EEPROM read fail: using defaults",
    8: "Not idle: '$' command cannot be used unless GRBL is idle",
    9: "G-code lock: G-code commands are locked out during alarm or jog state",
    10: "Homing not enabled: soft limits need homing enabled",
    11: "Line overflow: max characters per line exceeded, line not executed",
    12: "Step rate > 30 kHz: setting would exceed the maximum step rate",
    13: "Check door: safety door detected as opened",
    14: "Line length exceeded: build info or startup line too long for EEPROM",
    15: "Travel exceeded: jog target exceeds machine travel, jog ignored",
    16: "Invalid jog command: no '=' or prohibited G-code",
    17: "Setting disabled: laser mode requires PWM output",
    20: "Unsupported command: unsupported or invalid G-code command in block",
    21: "Modal group violation: more than one command from the same modal group",
    22: "Undefined feed rate: feed rate has not been set",
    23: "G-code command in block requires an integer value",
    24: "More than one G-code command that requires axis words in block",
    25: "Repeated G-code word in block",
    26: "No axis words in block for a command or modal state that needs them",
    27: "Line number value is invalid",
    28: "G-code command is missing a required value word",
    29: "G59.x work coordinate systems are not supported",
    30: "G53 only allowed with G0 and G1 motion modes",
    31: "Axis words in block when no command or modal state uses them",
    32: "G2 and G3 arcs require at least one in-plane axis word",
    33: "Motion command target is invalid",
    34: "Arc radius value is invalid",
    35: "G2 and G3 arcs require at least one in-plane offset word",
    36: "Unused value words in block",
    37: "G43.1 dynamic tool length offset is not assigned to the tool length axis",
    38: "Tool number greater than max supported value",
}

ALARM_CODES: dict[int, str] = {
    1: "Hard limit triggered: machine position is likely lost, re-homing is recommended",
    2: "Soft limit: motion target exceeds machine travel; position retained, may be unlocked",
    3: "Reset while in motion: position is likely lost, re-homing is recommended",
    4: "Probe fail: probe not in the expected initial state before the probe cycle",
    5: "Probe fail: probe did not contact the workpiece within the programmed travel",
    6: "Homing fail: the active homing cycle was reset",
    7: "Homing fail: safety door was opened during the homing cycle",
    8: "Homing fail: pull-off travel failed to clear the limit switch",
    9: "Homing fail: could not find the limit switch within the search distance",
}


def error_meaning(code: int) -> str:
    return ERROR_CODES.get(code, f"unknown GRBL error {code}")


def alarm_meaning(code: int) -> str:
    return ALARM_CODES.get(code, f"unknown GRBL alarm {code}")


class GrblState(enum.Enum):
    """The machine state word at the head of a ``<...>`` status report."""

    IDLE = "Idle"
    RUN = "Run"
    HOLD = "Hold"
    JOG = "Jog"
    ALARM = "Alarm"
    DOOR = "Door"
    CHECK = "Check"
    HOME = "Home"
    SLEEP = "Sleep"


Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class GrblStatus:
    """One parsed status report; positions in mm, feed in mm/min, spindle in rpm."""

    state: GrblState
    substate: int | None
    mpos: Vec3 | None
    wpos: Vec3 | None
    wco: Vec3 | None
    feed_mm_min: float | None
    spindle_rpm: float | None
    planner_free: int | None
    rx_free: int | None
    overrides: tuple[int, int, int] | None
    pins: str
    raw: str

    @property
    def state_text(self) -> str:
        return self.state.value + (f":{self.substate}" if self.substate is not None else "")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def _vec3(text: str) -> Vec3:
    values = _floats(text)
    if len(values) < 3:
        raise ValueError(f"expected 3 coordinates, got {text!r}")
    return (values[0], values[1], values[2])


def parse_status(line: str) -> GrblStatus:
    """Parse ``<Idle|MPos:0.000,0.000,0.000|FS:0,0|...>``; raises ValueError if malformed."""
    if not (line.startswith("<") and line.endswith(">")):
        raise ValueError(f"not a GRBL status report: {line!r}")
    fields = line[1:-1].split("|")
    name, _, sub = fields[0].partition(":")
    state = GrblState(name)  # ValueError on an unknown state word
    values: dict[str, str] = {}
    for item in fields[1:]:
        key, _, value = item.partition(":")
        values[key] = value
    mpos = _vec3(values["MPos"]) if "MPos" in values else None
    wpos = _vec3(values["WPos"]) if "WPos" in values else None
    wco = _vec3(values["WCO"]) if "WCO" in values else None
    feed = rpm = None
    if "FS" in values:
        fs = _floats(values["FS"])
        feed, rpm = fs[0], fs[1] if len(fs) > 1 else None
    elif "F" in values:
        feed = float(values["F"])
    planner_free = rx_free = None
    if "Bf" in values:
        bf = values["Bf"].split(",")
        planner_free, rx_free = int(bf[0]), int(bf[1])
    overrides = None
    if "Ov" in values:
        ov = [int(part) for part in values["Ov"].split(",")]
        overrides = (ov[0], ov[1], ov[2])
    return GrblStatus(
        state=state,
        substate=int(sub) if sub else None,
        mpos=mpos,
        wpos=wpos,
        wco=wco,
        feed_mm_min=feed,
        spindle_rpm=rpm,
        planner_free=planner_free,
        rx_free=rx_free,
        overrides=overrides,
        pins=values.get("Pn", ""),
        raw=line,
    )


_PAREN_COMMENT = re.compile(r"\([^)]*\)")


def normalise_line(raw: str) -> str:
    """Strip comments and whitespace and uppercase, as GRBL senders do; '' if nothing is left.

    ``;`` starts a comment to the end of the line, ``( ... )`` is an inline comment and a lone
    ``%`` (program delimiter) carries no command.
    """
    text = raw.split(";", 1)[0]
    text = _PAREN_COMMENT.sub("", text)
    text = "".join(text.split()).upper()
    return "" if text == "%" else text


@dataclass(frozen=True)
class JobLine:
    """A line to stream: its 1-based line number in the source file and its normalised text."""

    line_no: int
    text: str

    @property
    def wire_bytes(self) -> int:
        """Bytes the line occupies in GRBL's receive buffer, ``\\n`` included."""
        return len(self.text) + 1


def prepare_job(lines: list[str]) -> list[JobLine]:
    """Normalise a G-code program for streaming; raises GcodeError naming the line.

    Refused: lines longer than GRBL's 80-character line buffer, characters GRBL would take as
    realtime commands, ``$`` system commands (settings writes, homing, unlock are the maker's).
    """
    job: list[JobLine] = []
    for number, raw in enumerate(lines, start=1):
        text = normalise_line(raw)
        if not text:
            continue
        if len(text) > LINE_MAX_CHARS:
            raise GcodeError(
                f"{len(text)} characters after normalisation, GRBL accepts {LINE_MAX_CHARS}",
                number,
            )
        if any(ord(ch) in REALTIME_BYTES or ord(ch) > 0x7F for ch in text):
            raise GcodeError(f"realtime or non-ASCII character in {text!r}", number)
        if text.startswith("$"):
            raise GcodeError(f"GRBL system command {text!r} is not allowed in a job", number)
        job.append(JobLine(number, text))
    return job
