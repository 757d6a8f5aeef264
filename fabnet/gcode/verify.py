"""One pass over a G-code file for the agent: the safety verdict and the analysis together.

``check`` and ``analyse`` each parse the whole file and run it through the machine model; an
agent needs both for every task, so ``verify`` parses once and feeds each line to the safety
checker, whose machine model (with planning on) is also the analysis' (issue 9: the file was
parsed three times per task, 77-81 % of the agent's CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fabnet.gcode.analysis import Analysis, summarise
from fabnet.gcode.machine import MachineState
from fabnet.gcode.parser import parse
from fabnet.gcode.safety import Violation, _Checker
from fabnet.profiles.model import FdmMaterial, MachineProfile


@dataclass(frozen=True)
class Verified:
    """What one pass found: every ``violations`` of the profile's limits (empty: safe to
    run), in file order, and the file's ``analysis``."""

    violations: tuple[Violation, ...]
    analysis: Analysis

    @property
    def safe(self) -> bool:
        return not self.violations


def verify(
    source: str | Path, profile: MachineProfile, material: FdmMaterial | None = None
) -> Verified:
    """``check(source, profile)`` and ``analyse(source, profile, material)`` in one pass, with
    the same results. Raises GcodeError (with its line number) for an unparseable line,
    InvalidInput for a missing file."""
    state = MachineState(profile)
    checker = _Checker(profile, state)
    lines = 0
    for line in parse(source, comments=True):
        checker.line(line)
        lines = line.line_no
    return Verified(tuple(checker.out), summarise(state, lines, profile, material))
