"""A small 5-field cron matcher for availability windows (``* 18-23 * * 1-5``).

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of
week (0-7 or sun-sat, 0 and 7 both Sunday). Each field is ``*`` or a comma list of ``n``,
``a-b``, ``*/s``, ``a-b/s`` or ``n/s`` (from n to the end). As in Vixie cron, when both day
fields are restricted a day matches if either does. A window is open at a minute it matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fabnet.errors import InvalidInput

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names mapped to numbers)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)


@dataclass(frozen=True)
class CronExpr:
    """A parsed cron expression; build it with ``CronExpr.parse``."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        """Parse a 5-field expression; raise ``InvalidInput`` naming the field and the value."""
        parts = text.split()
        if len(parts) != 5:
            raise InvalidInput(f"cron expression must have 5 fields, got {len(parts)}: {text!r}")
        sets = [_parse_field(p, spec, text) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text=text,
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )

    def matches(self, when: datetime) -> bool:
        """True if the minute of ``when`` (in its own time zone) matches the expression."""
        if when.minute not in self.minutes or when.hour not in self.hours:
            return False
        if when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def _number(token: str, spec: tuple[str, int, int, dict[str, int]], text: str) -> int:
    name, low, high, names = spec
    value = names.get(token.lower())
    if value is None:
        if not token.isdigit():
            raise InvalidInput(f"cron {name} field: {token!r} is not a number in {text!r}")
        value = int(token)
    if not low <= value <= high:
        raise InvalidInput(f"cron {name} must be {low}..{high}, got {value} in {text!r}")
    return value


def _parse_field(
    field: str, spec: tuple[str, int, int, dict[str, int]], text: str
) -> frozenset[int]:
    name, low, high, _ = spec
    values: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise InvalidInput(f"cron {name} step must be >= 1, got {step_text!r} in {text!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, spec, text), _number(b, spec, text)
            if start > end:
                raise InvalidInput(f"cron {name} range {base!r} runs backwards in {text!r}")
        else:
            start = _number(base, spec, text)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def window_open(windows: tuple[CronExpr, ...], when: datetime) -> bool:
    """True if there are no windows (always available) or any window matches ``when``."""
    return not windows or any(w.matches(when) for w in windows)
