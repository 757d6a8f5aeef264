"""Drivers by name: ``make_driver("marlin", port=..., baud=...)``. Imports only the chosen one.

``make_machine_driver`` adds what a driver takes from the machine's profile (the Marlin
driver's Z travel, heater limits and park point); the maker's driver options win.

``DRIVER_OPTIONS`` is each driver's option schema, so a maker's ``[machines.driver_options]``
is type- and range-checked when the config loads, not when the driver's thread first connects.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fabnet.drivers.base import Driver
from fabnet.errors import InvalidInput
from fabnet.profiles import FdmProfile, MachineProfile

# driver name -> "module:class"
DRIVERS: dict[str, str] = {
    "octoprint": "fabnet.drivers.octoprint:OctoPrintDriver",
    "marlin": "fabnet.drivers.marlin:MarlinDriver",
    "grbl": "fabnet.drivers.grbl:GrblDriver",
    "sim": "fabnet.drivers.sim:SimDriver",
}


Scalar = str | int | float | bool

# The serial rates fabnet's serial drivers accept (1000000: USB-serial boards and the simulators).
STANDARD_BAUDS = (
    9600,
    19200,
    38400,
    57600,
    115200,
    230400,
    250000,
    460800,
    500000,
    921600,
    1000000,
)


@dataclass(frozen=True)
class Option:
    """One driver option: its type, whether it must be given, and its allowed range or values."""

    kind: type[str] | type[int] | type[float] | type[bool]
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    choices: tuple[int, ...] = ()

    def check(self, key: str, value: Scalar) -> Scalar:
        """``value`` as this option's type; raises InvalidInput naming ``key`` and the value."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) != (self.kind is bool) or not isinstance(value, self.kind):
            raise InvalidInput(f"{key} must be {_KIND_NAMES[self.kind]}, got {value!r}")
        if self.choices and value not in self.choices:
            raise InvalidInput(
                f"{key} must be one of {', '.join(map(str, self.choices))}, got {value!r}"
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
                raise InvalidInput(f"{key} must be {self.lo:g}..{self.hi:g}, got {value!r}")
        return value


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_SERIAL = Option(str, required=True)
_BAUD = Option(int, choices=STANDARD_BAUDS)
_TIMEOUT = Option(float, lo=0.1, hi=600)

DRIVER_OPTIONS: Mapping[str, Mapping[str, Option]] = {
    "octoprint": {
        "url": Option(str, required=True),
        "api_key": Option(str, required=True),
        "timeout_s": _TIMEOUT,
    },
    "marlin": {
        "port": _SERIAL,
        "baud": _BAUD,
        "max_z_mm": Option(float, lo=1, hi=2000),
        "lift_mm": Option(float, lo=0, hi=100),
        "ok_timeout_s": _TIMEOUT,
        "max_retries": Option(int, lo=0, hi=100),
        "connect_timeout_s": _TIMEOUT,
        "autoreport_s": Option(int, lo=0, hi=60),
        "window": Option(int, lo=1, hi=64),
    },
    "grbl": {
        "port": _SERIAL,
        "baud": _BAUD,
        "allow_unlock": Option(bool),
        "safe_z_mm": Option(float, lo=0, hi=200),
        "machine_safe_z_mm": Option(float, lo=-2000, hi=0),
        "poll_interval_s": Option(float, lo=0.01, hi=10),
        "response_timeout_s": _TIMEOUT,
        "hold_timeout_s": _TIMEOUT,
        "connect_timeout_s": _TIMEOUT,
    },
    "sim": {
        "speed": Option(float, lo=0.001, hi=1e6),
        "min_duration_s": Option(float, lo=0, hi=86400),
        "fail_at_percent": Option(float, lo=0, hi=100),
    },
}


def check_driver_options(name: str, options: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """``options`` checked against driver ``name``'s schema (ints become floats where a number
    is wanted). Raises InvalidInput naming an unknown driver, an unknown or missing option, or
    an option of the wrong type or range, with its value."""
    schema = DRIVER_OPTIONS.get(name)
    if schema is None:
        raise InvalidInput(f"driver must be one of {', '.join(sorted(DRIVERS))}, got {name!r}")
    unknown = sorted(set(options) - set(schema))
    if unknown:
        raise InvalidInput(
            f"driver {name!r} has no option {', '.join(unknown)}; its options: {', '.join(schema)}"
        )
    missing = [key for key, option in schema.items() if option.required and key not in options]
    if missing:
        raise InvalidInput(f"driver {name!r} needs option {', '.join(missing)}")
    return {key: schema[key].check(key, value) for key, value in options.items()}


def make_driver(name: str, **options: Any) -> Driver:
    """A driver of kind ``name`` built with ``options``; None-valued options are left to the
    driver's defaults. Raises InvalidInput naming an unknown driver or an option it lacks."""
    target = DRIVERS.get(name)
    if target is None:
        raise InvalidInput(f"driver must be one of {', '.join(sorted(DRIVERS))}, got {name!r}")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    given = {key: value for key, value in options.items() if value is not None}
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise InvalidInput(f"driver {name!r} has no option {', '.join(unknown)}")
    driver: Driver = cls(**given)
    return driver


# constructor arguments that come from the machine's profile only, never from driver_options
PROFILE_ONLY_OPTIONS: Mapping[str, frozenset[str]] = {"marlin": frozenset({"thermal", "park"})}


def profile_options(name: str, profile: MachineProfile) -> dict[str, Any]:
    """Options driver ``name`` takes from ``profile``: for Marlin on a printer, the Z travel
    (mm), the temperature watch (profile maxima, ``thermal_margin_c``, ``thermal_hold_s``) and
    the pause's park (``[pause]``, retraction, feeds capped by the axes' maxima)."""
    if name != "marlin" or not isinstance(profile, FdmProfile):
        return {}
    from fabnet.drivers.marlin_job import ThermalLimits  # imported only for a Marlin machine
    from fabnet.drivers.marlin_park import ParkSettings

    feed = profile.max_feed_mm_s
    park_x, park_y = profile.park_xy_mm
    return {
        "max_z_mm": profile.volume.z_mm,
        "thermal": ThermalLimits(
            margin_c=profile.thermal_margin_c,
            margin_s=profile.thermal_hold_s,
            hotend_max_c=profile.max_hotend_c,
            bed_max_c=profile.max_bed_c,
        ),
        "park": ParkSettings(
            lift_mm=profile.pause_lift_mm,
            x_mm=park_x,
            y_mm=park_y,
            retract_mm=profile.retract_mm,
            retract_feed_mm_min=profile.retract_speed_mm_s * 60,
            travel_feed_mm_min=min(feed.x, feed.y, PARK_TRAVEL_MM_S) * 60,
            z_feed_mm_min=min(feed.z, PARK_Z_MM_S) * 60,
        ),
    }


PARK_TRAVEL_MM_S = 100.0  # parking is no race: well under any printer's maximum
PARK_Z_MM_S = 10.0


def make_machine_driver(name: str, options: Mapping[str, Any], profile: MachineProfile) -> Driver:
    """A machine's driver: ``profile_options`` overridden by the maker's ``options``. Raises
    as ``make_driver``."""
    return make_driver(name, **{**profile_options(name, profile), **options})
