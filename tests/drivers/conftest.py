"""Shared fixtures for driver tests: Marlin simulators on real ptys and drivers connected to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from marlin_support import DriverFactory, SimFactory

from fabnet.drivers.marlin import MarlinDriver
from fabnet.sim.marlin import MarlinSimulator
from fabnet.sim.marlin_faults import FaultPlan


@pytest.fixture
def marlin_sim() -> Iterator[SimFactory]:
    """Factory of started Marlin simulators (closed after the test); speed 1000 by default."""
    sims: list[MarlinSimulator] = []

    def make(faults: FaultPlan | None = None, **options: object) -> MarlinSimulator:
        options.setdefault("speed", 1000.0)
        options.setdefault("busy_interval_s", 0.25)  # below the drivers' 1 s ok timeout
        sim = MarlinSimulator(faults=faults, **options)  # type: ignore[arg-type]
        sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.close()


@pytest.fixture
def marlin_driver() -> Iterator[DriverFactory]:
    """Factory of connected Marlin drivers (disconnected after the test)."""
    drivers: list[MarlinDriver] = []

    def make(sim: MarlinSimulator, **options: object) -> MarlinDriver:
        options.setdefault("ok_timeout_s", 1.0)
        driver = MarlinDriver(sim.path, sim.baud, **options)  # type: ignore[arg-type]
        driver.connect()
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.disconnect()
