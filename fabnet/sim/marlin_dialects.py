"""The words of each Marlin-family firmware, as the simulator speaks them
(``fabnet sim marlin --dialect marlin|prusa|repetier|smoothie|rrf``).

The host protocol is the same for all (``N<n> <cmd>*<xor>`` lines, ``M110`` to renumber, one
``ok`` per accepted line); what differs is how a firmware words a communication error, how it
asks for a resend, whether an ``ok`` follows that request, what it does with lines that arrive
behind a rejected one, how it reports a fault and what ``M115`` says. The sources each text is
taken from are cited in ``fabnet.drivers.marlin_dialects``; where a firmware's source was not
read for a text, the simulator uses Marlin's and says so here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fabnet.errors import InvalidInput

REPETIER_SKIP_LINES = 14  # gcode.cpp requestResend(): waitingForResend = 14 (ASCII)
REPETIER_SEEN_WINDOW = 40  # checkAndPushCommand(): a line up to 40 behind is "seen already"


@dataclass(frozen=True)
class Dialect:
    """One firmware's words. ``{last}``: last accepted N; ``{expected}`` / ``{got}``: the N the
    firmware wanted and the one it received. An empty error text: the firmware prints none.

    resend: the resend request, ``{n}`` the line wanted; resend_ok: an ``ok`` follows it.
    flush_on_error: the receive buffer is emptied before the request (Marlin's queue.cpp
    gcode_line_error, Repetier's requestResend), so lines already received get no answer.
    skip_behind: lines behind a rejected one (and lines it already ran) are answered
    ``skip <n>`` + ``ok`` (Repetier) rather than each being rejected with an error + resend.
    faults: the lines printed for halt / thermal runaway / MINTEMP / MAXTEMP / heating failed.
    """

    name: str
    banner: tuple[str, ...]
    firmware_name: str
    caps: tuple[tuple[str, int], ...]
    line_number: str
    checksum: str
    no_checksum: str
    no_line_number: str
    resend: str
    resend_ok: bool = True
    flush_on_error: bool = True
    blank_before_resend: bool = False
    skip_behind: bool = False

    def error(self, kind: str, last: int, got: int) -> str:
        """The error line for ``kind`` (line_number|checksum|no_checksum|no_line_number)."""
        template: str = getattr(self, kind)
        return template.format(last=last, expected=last + 1, got=got)

    def m115(self) -> list[str]:
        """The lines ``M115`` prints before its ok."""
        return [self.firmware_name, *(f"Cap:{name}:{value}" for name, value in self.caps)]

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(name for name, value in self.caps if value)


# Fault texts: Marlin 2.x (language.h STR_ERR_KILLED; temperature.cpp _temp_error prints
# "Error:" + the heater message + STR_STOPPED_HEATER ", system stopped! Heater_ID: " + id).
# The other dialects' own fault texts were not read; the simulator prints these for all.
HALT_LINE = "Error:Printer halted. kill() called!"
FAULT_LINES = {
    "runaway": "Error:Thermal Runaway, system stopped! Heater_ID: 0",
    "mintemp": "Error:MINTEMP triggered, system stopped! Heater_ID: 0",
    "maxtemp": "Error:MAXTEMP triggered, system stopped! Heater_ID: 0",
    "heatfail": "Error:Heating failed, system stopped! Heater_ID: 0",
}

_LINE_NO = "Error:Line Number is not Last Line Number+1, Last Line: {last}"
_CHECKSUM = "Error:checksum mismatch, Last Line: {last}"
_NO_CHECKSUM = "Error:No Checksum with line number, Last Line: {last}"
_NO_LINE_NO = "Error:No Line Number with checksum, Last Line: {last}"

DIALECTS: dict[str, Dialect] = {
    "marlin": Dialect(
        name="marlin",
        banner=(
            "start",
            "echo:Marlin 2.1.2.1 (fabnet simulator)",
            "echo: Last Updated: 2023-05-01 | Author: (fabnet)",
            "echo:Compiled: simulated",
            "echo: Free Memory: 4096  PlannerBufferBytes: 1568",
        ),
        firmware_name="FIRMWARE_NAME:Marlin 2.1.2.1 (fabnet simulator) PROTOCOL_VERSION:1.0 "
        "MACHINE_TYPE:fabnet EXTRUDER_COUNT:1",
        caps=(("AUTOREPORT_TEMP", 1), ("EMERGENCY_PARSER", 1), ("ADVANCED_OK", 1)),
        resend="Resend: {n}",
        line_number=_LINE_NO,
        checksum=_CHECKSUM,
        no_checksum=_NO_CHECKSUM,
        no_line_number=_NO_LINE_NO,
    ),
    # Prusa-Firmware keeps Marlin 1.1's serial texts; this build reports no emergency parser
    # and no ADVANCED_OK, so a cancel waits its turn and oks carry no buffer counts
    "prusa": Dialect(
        name="prusa",
        banner=("start", "echo:Prusa MK3S (fabnet simulator)", "echo: Free Memory: 1500"),
        firmware_name="FIRMWARE_NAME:Prusa-Firmware 3.13.0 based on Marlin "
        "FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0 "
        "MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1",
        caps=(("AUTOREPORT_TEMP", 1), ("EMERGENCY_PARSER", 0), ("ADVANCED_OK", 0)),
        resend="Resend: {n}",
        line_number=_LINE_NO,
        checksum=_CHECKSUM,
        no_checksum=_NO_CHECKSUM,
        no_line_number=_NO_LINE_NO,
    ),
    # Repetier-Firmware: "Error:expected line <n> got <m>", "Resend:<n>" after an empty line,
    # "skip <n>" + "ok" for lines behind a rejected one; it has no "no line number" error (a
    # line without N is simply unnumbered), so a stripped N reads as a checksum failure here
    "repetier": Dialect(
        name="repetier",
        banner=("start", "Repetier-Firmware 1.0.4 (fabnet simulator)", "Free RAM:4096"),
        firmware_name="FIRMWARE_NAME:Repetier_1.0.4 FIRMWARE_URL:https://github.com/repetier/"
        "Repetier-Firmware/ PROTOCOL_VERSION:1.0 MACHINE_TYPE:Mendel EXTRUDER_COUNT:1 "
        "REPETIER_PROTOCOL:3",
        caps=(("AUTOREPORT_TEMP", 1), ("EMERGENCY_PARSER", 1)),
        line_number="Error:expected line {expected} got {got}",
        checksum="Error:Wrong checksum",
        no_checksum="Error:Missing checksum",
        no_line_number="Error:Wrong checksum",
        resend="Resend:{n}",
        blank_before_resend=True,
        skip_behind=True,
    ),
    # Smoothieware: no error text, "rs N<n>" without an ok; no Cap lines (poll with M105)
    "smoothie": Dialect(
        name="smoothie",
        banner=("Smoothie", "ready"),
        firmware_name="FIRMWARE_NAME:Smoothieware, FIRMWARE_URL:http%3A//smoothieware.org, "
        "X-SOURCE_CODE_URL:https://github.com/Smoothieware/Smoothieware, "
        "FIRMWARE_VERSION:edge-fabnet, X-CNC:0",
        caps=(),
        line_number="",
        checksum="",
        no_checksum="",
        no_line_number="",
        resend="rs N{n}",
        resend_ok=False,
        flush_on_error=False,
    ),
    # RepRapFirmware 1.x: a bad line becomes "M998 P<n>", answered "rs <n>" and an ok; no
    # error text and no Cap lines. The "rs " prefix and the ok are this simulator's reading
    # of GCodes.cpp HandleReply, not quoted from it.
    "rrf": Dialect(
        name="rrf",
        banner=("RepRapFirmware for Duet (fabnet simulator)",),
        firmware_name="FIRMWARE_NAME: RepRapFirmware for Duet 2 WiFi/Ethernet "
        "FIRMWARE_VERSION: 3.4.6 ELECTRONICS: Duet WiFi 1.02 or later",
        caps=(),
        line_number="",
        checksum="",
        no_checksum="",
        no_line_number="",
        resend="rs {n}",
        flush_on_error=False,
    ),
}


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; raises InvalidInput naming the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        known = "|".join(DIALECTS)
        raise InvalidInput(f"dialect must be {known}, got {name!r}") from None


def checksum(text: str) -> int:
    """The host protocol's checksum: XOR of every byte before the ``*``."""
    value = 0
    for byte in text.encode("ascii", errors="replace"):
        value ^= byte
    return value


def split_line(line: str) -> tuple[int | None, str, str | None]:
    """``N12 G1 X5*71`` -> (12, "G1 X5", "71"); N None if missing or not a number, checksum
    text None if there is no ``*``; an unnumbered line comes back whole as the command."""
    body, star, sent_cs = line.rpartition("*") if "*" in line else (line, "", "")
    if not line.startswith("N"):
        return None, line if not star else body, sent_cs if star else None
    number, _, cmd = body[1:].partition(" ")
    try:
        n = int(number)
    except ValueError:
        return None, body, sent_cs if star else None
    return n, cmd.strip(), sent_cs if star else None


class LineReceiver:
    """Checks numbered lines as the dialect's firmware does and answers what it rejects.

    ``send`` prints a line to the host; ``flush`` empties the firmware's receive buffer (Marlin
    and Repetier both flush before asking for a resend). Not thread-safe: the simulator calls
    it under its own lock.
    """

    def __init__(self, dialect: Dialect, send: Callable[[str], None], flush: Callable[[], None]):
        self.dialect = dialect
        self.last_n = 0
        self._send = send
        self._flush = flush
        self._behind = 0  # Repetier: lines still to skip behind a requested resend

    def check(self, n: int, cmd: str, sent_cs: str | None, corrupt: bool) -> bool:
        """True if line ``n`` (``cmd``, its checksum text or None) is accepted as the next."""
        is_m110 = cmd.split()[:1] == ["M110"]
        if n != self.last_n + 1 and not is_m110:
            self._out_of_order(n)
            return False
        body = f"N{n} {cmd}"
        if sent_cs is None:
            self.reject("no_checksum", n)
        elif corrupt or not sent_cs.strip().isdigit() or int(sent_cs) != checksum(body):
            self.reject("checksum", n)
        else:
            self.last_n = n
            self._behind = 0
            return True
        return False

    def _out_of_order(self, n: int) -> None:
        d = self.dialect
        if d.skip_behind and (0 <= self.last_n - n < REPETIER_SEEN_WINDOW or self._behind > 0):
            if n > self.last_n:
                self._behind -= 1
            self._send(f"skip {n}")
            self._send("ok")
            return
        self.reject("line_number", n)

    def reject(self, kind: str, got: int) -> None:
        """Word the error, ask for the line after the last accepted one."""
        d = self.dialect
        if d.flush_on_error:
            self._flush()
        text = d.error(kind, self.last_n, got)
        if text:
            self._send(text)
        if d.blank_before_resend:
            self._send("")
        self._send(d.resend.format(n=self.last_n + 1))
        if d.resend_ok:
            self._send("ok")
        if d.skip_behind:
            self._behind = REPETIER_SKIP_LINES
