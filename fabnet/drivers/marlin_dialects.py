"""The texts the Marlin family of firmwares print on the serial line, as the driver reads them:
communication errors a resend request follows (recoverable), real faults (fatal), resend
requests in each wording, and the ``M115`` report that names the firmware and its capabilities.

Every text below is cited from that firmware's source (repository and file). Hosts that work
with all of them treat an error followed by a resend request as a communication error and keep
such a table; an ``Error:`` line this table does not know is judged by what follows it (a resend
request: recoverable; anything else: fatal, with the raw line kept).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

# --- communication errors: a resend request follows, nothing ran -------------------------------
COMM_ERRORS: tuple[str, ...] = (
    # Marlin 2.x, MarlinFirmware/Marlin Marlin/src/core/language.h: STR_ERR_LINE_NO
    # "Line Number is not Last Line Number+1, Last Line: ", STR_ERR_CHECKSUM_MISMATCH
    # "checksum mismatch, Last Line: ", STR_ERR_NO_CHECKSUM "No Checksum with line number,
    # Last Line: " (printed by Marlin/src/gcode/queue.cpp gcode_line_error, then "Resend: ").
    # Marlin 1.1 and Prusa-Firmware (Firmware/language.h, Marlin_main.cpp) use the same words.
    "Line Number is not Last Line Number+1",
    "checksum mismatch",
    "No Checksum with line number",
    # Marlin 1.x / Prusa-Firmware: MSG_ERR_NO_LINENUMBER_WITH_CHECKSUM
    # "No Line Number with checksum, Last Line: "
    "No Line Number with checksum",
    # Repetier-Firmware, repetier/Repetier-Firmware src/ArduinoDUE/Repetier/Communication.cpp:
    # tExpectedLine "Error:expected line " + tGot " got ", tWrongChecksum "Wrong checksum",
    # tMissingChecksum "Missing checksum", tFormatError "Format error"; gcode.cpp
    # requestResend() then prints an empty line, "Resend:<n>" and "ok".
    "expected line",
    "Wrong checksum",
    "Missing checksum",
    "Format error",
)

# --- real faults: the firmware stopped, or will, and the print is lost -------------------------
FATAL_ERRORS: tuple[str, ...] = (
    # Marlin 2.x language.h: STR_ERR_KILLED "Printer halted. kill() called!", STR_ERR_STOPPED
    # "Printer stopped due to errors. Fix the error and use M999 to restart. ...",
    # temperature.cpp strings STR_T_THERMAL_RUNAWAY "Thermal Runaway", STR_T_MAXTEMP
    # "MAXTEMP triggered", STR_T_MINTEMP "MINTEMP triggered", STR_T_HEATING_FAILED
    # "Heating failed", each followed by STR_STOPPED_HEATER ", system stopped! Heater_ID: ".
    "Printer halted",
    "kill() called",
    "Printer stopped due to errors",
    "Thermal Runaway",
    "MAXTEMP",
    "MINTEMP",
    "Heating failed",
)
# Repetier-Firmware Communication.cpp: tFatal "fatal:" (the firmware is in fail mode, tM999
# "Fail mode active. Send M999 to disable failed mode!").
FATAL_PREFIXES: tuple[str, ...] = ("fatal:",)
# Smoothieware, Smoothieware/Smoothieware src/modules/communication/GcodeDispatch.cpp: a halted
# kernel answers every command but a few with "!!"; M112 answers "ok Emergency Stop Requested -
# reset or M999 required to exit HALT state".
SMOOTHIE_HALTED = "!!"
SMOOTHIE_HALT_TEXT = "HALT state"

# --- resend requests -----------------------------------------------------------------------------
# Marlin: "Resend: <n>" (language.h STR_RESEND). Repetier: "Resend:<n>" (Communication.cpp
# tResend, no space). Smoothieware: "rs N<n>" (GcodeDispatch.cpp, printf("rs N%d\r\n",
# nextline)). RepRapFirmware 1.x: a line with a bad checksum becomes "M998 P<n>" (GCodeBuffer.cpp)
# whose reply is the line number with the resend flag set (GCodes.cpp case 998), "rs <n>".
RESEND = re.compile(r"^(?:Resend|rs)[: ]\s*N?(\d+)", re.IGNORECASE)
# Repetier gcode.cpp checkAndPushCommand(): a line already seen, or one that arrives while a
# resend is awaited, is dropped with "skip <n>" and an "ok" (tSkip "skip ").
SKIP = re.compile(r"^skip\s+(\d+)$")
# Marlin ADVANCED_OK "ok N12 P15 B3"; Repetier ACK_WITH_LINENUMBER "ok 12" (tOkSpace "ok ").
OK_LINE_NUMBER = re.compile(r"^ok\s+N?(\d+)\b")


class LineKind(enum.Enum):
    """What one firmware line means to the stream."""

    OTHER = "other"
    COMM_ERROR = "comm_error"  # a resend request follows; nothing ran
    FATAL = "fatal"  # the firmware stopped
    UNKNOWN_ERROR = "unknown_error"  # judged by what follows it


def classify(line: str) -> LineKind:
    """Sort one firmware line by the tables above (``ok`` / resend lines are the caller's)."""
    text = line.strip()
    if text.startswith(FATAL_PREFIXES) or text == SMOOTHIE_HALTED or SMOOTHIE_HALT_TEXT in text:
        return LineKind.FATAL
    low = text.lower()  # hosts meet "Error:expected line" and "Error: Expected Line" alike
    is_error = low.startswith(("error", "!!"))
    if any(word.lower() in low for word in FATAL_ERRORS):
        return LineKind.FATAL
    if any(word.lower() in low for word in COMM_ERRORS):
        return LineKind.COMM_ERROR
    return LineKind.UNKNOWN_ERROR if is_error else LineKind.OTHER


# --- M115: firmware name and capabilities --------------------------------------------------------
# Marlin M115 (Marlin/src/gcode/host/M115.cpp) prints "FIRMWARE_NAME:Marlin ..." then one
# "Cap:<NAME>:<0|1>" line per capability; Repetier prints the same "Cap:" lines (Communication.cpp
# tCap "Cap:"). Smoothieware's M115 prints "FIRMWARE_NAME:Smoothieware, ..." and no Cap lines.
_CAP = re.compile(r"^Cap:([A-Z0-9_]+):([01])$")
_NAME = re.compile(r"FIRMWARE_NAME:\s*([^\s,;]+)")


@dataclass(frozen=True)
class Capabilities:
    """What ``M115`` told us. ``resend_with_ok``: an ``ok`` follows every resend request
    (Marlin, Prusa, Repetier, RepRapFirmware); Smoothieware's ``rs N<n>`` comes alone."""

    firmware: str = "unknown"
    caps: frozenset[str] = field(default_factory=frozenset)

    @property
    def autoreport_temp(self) -> bool:
        return "AUTOREPORT_TEMP" in self.caps

    @property
    def emergency_parser(self) -> bool:
        return "EMERGENCY_PARSER" in self.caps

    @property
    def advanced_ok(self) -> bool:
        return "ADVANCED_OK" in self.caps

    @property
    def resend_with_ok(self) -> bool:
        return not self.firmware.lower().startswith("smoothie")


def parse_m115(lines: list[str]) -> Capabilities:
    """Capabilities from the lines a firmware printed in answer to ``M115``."""
    firmware = "unknown"
    caps: set[str] = set()
    for line in lines:
        text = line.strip()
        if (name := _NAME.search(text)) is not None:
            firmware = name.group(1)
        elif (cap := _CAP.match(text)) is not None and cap.group(2) == "1":
            caps.add(cap.group(1))
    return Capabilities(firmware, frozenset(caps))
