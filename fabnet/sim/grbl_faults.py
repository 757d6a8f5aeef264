"""Faults the simulated GRBL can inject, and the compact text form ``fabnet sim grbl`` accepts.

Block numbers count G-code blocks (lines not starting with ``$``) received since the
simulator started, from 1; ``$`` commands sent while connecting do not shift them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabnet.errors import InvalidInput


@dataclass(frozen=True)
class GrblFaults:
    """``error_at``: block -> error code answered instead of ok; ``alarm_at``: block -> alarm
    raised instead of executing it (1 and 2 need a reset); ``silent_from``: from that block on
    the firmware says nothing at all; ``door_at``: the safety door opens when that block runs and
    closes ``door_open_s`` real seconds later."""

    error_at: dict[int, int] = field(default_factory=dict)
    alarm_at: dict[int, int] = field(default_factory=dict)
    silent_from: int | None = None
    door_at: int | None = None
    door_open_s: float = 0.5

    @classmethod
    def parse(cls, text: str) -> GrblFaults:
        """Parse ``"error:20@5,alarm:1@40,silence@80,door@30"``; raises InvalidInput."""
        error_at: dict[int, int] = {}
        alarm_at: dict[int, int] = {}
        silent_from = door_at = None
        for item in filter(None, (part.strip() for part in text.split(","))):
            what, at, block = item.partition("@")
            try:
                number = int(block)
                kind, _, code = what.partition(":")
                if not at or number < 1:
                    raise ValueError(item)
                if kind == "error":
                    error_at[number] = int(code)
                elif kind == "alarm":
                    alarm_at[number] = int(code)
                elif kind == "silence" and not code:
                    silent_from = number
                elif kind == "door" and not code:
                    door_at = number
                else:
                    raise ValueError(item)
            except ValueError:
                raise InvalidInput(
                    f"faults: cannot read {item!r}; use error:N@block, alarm:N@block, "
                    "silence@block or door@block, comma-separated"
                ) from None
        return cls(error_at, alarm_at, silent_from, door_at)
