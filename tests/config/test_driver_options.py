"""``[machines.driver_options]`` are checked against each driver's schema when the config loads."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from config_files import agent_toml

from fabnet.config import load_agent_config
from fabnet.drivers.registry import DRIVER_OPTIONS, DRIVERS, PROFILE_ONLY_OPTIONS
from fabnet.errors import ConfigError


def marlin(tmp_path: Path, options: str) -> Path:
    return agent_toml(tmp_path, machine='driver = "marlin"', options=options)


def test_a_wrong_type_names_machine_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_agent_config(marlin(tmp_path, 'port = "/dev/ttyUSB0"\nbaud = "fast"'))
    message = str(caught.value)
    assert "machine 'm1' (marlin)" in message and "baud" in message and "'fast'" in message


def test_a_non_standard_baud_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="baud must be one of 9600, .*115200.*, got 12345"):
        load_agent_config(marlin(tmp_path, 'port = "/dev/ttyUSB0"\nbaud = 12345'))


def test_unknown_and_missing_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="driver 'marlin' has no option speed"):
        load_agent_config(marlin(tmp_path, 'port = "/dev/ttyUSB0"\nspeed = 2.0'))
    with pytest.raises(ConfigError, match="driver 'marlin' needs option port"):
        load_agent_config(marlin(tmp_path, "baud = 115200"))
    with pytest.raises(ConfigError, match="speed must be 0.001..1e\\+06, got -1"):
        load_agent_config(agent_toml(tmp_path, options="speed = -1"))


def test_good_options_load_typed(tmp_path: Path) -> None:
    config = load_agent_config(agent_toml(tmp_path, options="speed = 60\nmin_duration_s = 0.3"))
    assert config.machines[0].driver_options == {"speed": 60.0, "min_duration_s": 0.3}
    config = load_agent_config(marlin(tmp_path, 'port = "/dev/ttyUSB0"\nbaud = 250000'))
    assert config.machines[0].driver_options == {"port": "/dev/ttyUSB0", "baud": 250000}


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_each_schema_matches_its_drivers_constructor(name: str) -> None:
    module, cls = DRIVERS[name].split(":")
    parameters = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
    assert set(DRIVER_OPTIONS[name]) | PROFILE_ONLY_OPTIONS.get(name, set()) == set(parameters)
    required = {k for k, p in parameters.items() if p.default is inspect.Parameter.empty}
    assert {k for k, o in DRIVER_OPTIONS[name].items() if o.required} == required
