"""G-code: parse every dialect fabnet meets, analyse it (layers, grams, time), check its safety."""

from fabnet.gcode.analysis import Analysis, analyse
from fabnet.gcode.parser import GcodeLine, parse, parse_line
from fabnet.gcode.safety import Rule, Violation, assert_safe, check

__all__ = [
    "Analysis",
    "GcodeLine",
    "Rule",
    "Violation",
    "analyse",
    "assert_safe",
    "check",
    "parse",
    "parse_line",
]
