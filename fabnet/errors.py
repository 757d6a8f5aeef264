"""The one exception tree of fabnet; every layer raises from here and the edges map it.

FabnetError
├── InvalidInput        bad input from a person or a peer (HTTP 400); names field and value
│   ├── ConfigError     a config or profile file is wrong (names the file and key)
│   ├── MeshError       a mesh cannot be used (not a mesh, empty, not watertight, too big…)
│   ├── GcodeError      G-code cannot be parsed
│   └── LicenseError    a license forbids what was asked (e.g. remixing a -ND design)
├── NotFound            a named thing does not exist (HTTP 404)
├── Conflict            the state of a thing forbids the action (HTTP 409)
├── SafetyError         G-code would exceed a machine's limits; carries the violations
├── ToolMissing         an external program (slicer, broker) is not installed
├── ToolFailed          an external program ran and failed (carries its output)
└── DeviceError         a machine or its host answered with an error (HTTP 502); raw line kept
    └── DeviceTimeout   a machine or its host stopped answering
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FabnetError(Exception):
    """Root of every error fabnet raises on purpose."""


class InvalidInput(FabnetError):
    """Input from a person or a peer is wrong; the message names the field and the value."""


class ConfigError(InvalidInput):
    """A configuration or profile file is wrong; the message names the file and the key."""


class MeshError(InvalidInput):
    """A mesh cannot be used as it is; ``reason`` is a short machine-readable code."""

    def __init__(self, message: str, reason: str = "invalid", **facts: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.facts = facts


class GcodeError(InvalidInput):
    """G-code cannot be parsed; ``line_no`` is 1-based where known."""

    def __init__(self, message: str, line_no: int | None = None) -> None:
        super().__init__(f"line {line_no}: {message}" if line_no else message)
        self.line_no = line_no


class LicenseError(InvalidInput):
    """A design's license forbids the requested action."""


class NotFound(FabnetError):
    """A named thing does not exist."""


class Conflict(FabnetError):
    """The current state of a thing forbids the requested action."""


class SafetyError(FabnetError):
    """G-code exceeds a machine's limits; ``violations`` lists each offending line."""

    def __init__(self, message: str, violations: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.violations = list(violations)


class ToolMissing(FabnetError):
    """An external program fabnet needs is not installed; the message says how to get it."""


class ToolFailed(FabnetError):
    """An external program ran and failed; ``output`` holds what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class DeviceError(FabnetError):
    """A machine or its host reported an error; ``raw`` keeps the firmware's own line."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class DeviceTimeout(DeviceError):
    """A machine or its host stopped answering within the allowed time."""
