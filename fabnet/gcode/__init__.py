"""G-code: parse every dialect fabnet meets, analyse it (layers, grams, time), check its safety."""

from fabnet.gcode.analysis import Analysis, analyse
from fabnet.gcode.parser import GcodeLine, parse, parse_line
from fabnet.gcode.safety import Rule, Violation, assert_safe, check
from fabnet.gcode.verify import Verified, verify

__all__ = [
    "Analysis",
    "GcodeLine",
    "Rule",
    "Verified",
    "Violation",
    "analyse",
    "assert_safe",
    "check",
    "parse",
    "parse_line",
    "verify",
]
