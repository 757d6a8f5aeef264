"""Heaters of the simulated printer: linear heating, Newtonian cooling that settles at ambient
once the target is 0 (time is passed in, so no waiting)."""

from __future__ import annotations

from fabnet.sim.marlin_machine import (
    AMBIENT_C,
    BED_RATE_C_S,
    HOTEND_COOL_TAU_S,
    HOTEND_RATE_C_S,
    Heater,
    Machine,
)


def test_an_off_hotend_cools_fast_when_hot_then_settles_at_ambient() -> None:
    hotend = Heater(HOTEND_RATE_C_S, HOTEND_COOL_TAU_S, actual_c=215.0, target_c=0.0)
    hotend.update(1.0)
    first_second = 215.0 - hotend.actual_c
    assert first_second > HOTEND_RATE_C_S  # faster than the linear rate while hot
    for _ in range(int(10 * HOTEND_COOL_TAU_S)):
        hotend.update(1.0)
    assert hotend.actual_c == AMBIENT_C


def test_cooling_to_a_lower_target_stops_there_and_heating_is_linear() -> None:
    hotend = Heater(HOTEND_RATE_C_S, HOTEND_COOL_TAU_S, actual_c=215.0, target_c=180.0)
    for _ in range(600):
        hotend.update(0.5)
    assert hotend.actual_c == 180.0
    bed = Machine().bed
    bed.target_c = 60.0
    bed.update(10.0)
    assert bed.actual_c == AMBIENT_C + 10.0 * BED_RATE_C_S


def test_speed_scales_cooling_time() -> None:
    slow, fast = Machine(speed=1.0), Machine(speed=10.0)
    for m in (slow, fast):
        m.hotend.actual_c = 215.0
        m.tick(0.0)
        m.tick(5.0)
    assert fast.hotend.actual_c < slow.hotend.actual_c
