"""Drivers by name: ``make_driver("marlin", port=..., baud=...)``. Imports only the chosen one."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from fabnet.drivers.base import Driver
from fabnet.errors import InvalidInput

# driver name -> "module:class"
DRIVERS: dict[str, str] = {
    "octoprint": "fabnet.drivers.octoprint:OctoPrintDriver",
    "marlin": "fabnet.drivers.marlin:MarlinDriver",
    "grbl": "fabnet.drivers.grbl:GrblDriver",
    "sim": "fabnet.drivers.sim:SimDriver",
}


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
