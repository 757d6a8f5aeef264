"""OctoPrint state texts mapped onto DriverState."""

from __future__ import annotations

import pytest

from fabnet.drivers.base import DriverState
from fabnet.drivers.octoprint_states import map_state


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Operational", DriverState.IDLE),
        ("Printing", DriverState.RUNNING),
        ("Printing from SD", DriverState.RUNNING),
        ("Starting", DriverState.RUNNING),
        ("Resuming", DriverState.RUNNING),
        ("Finishing", DriverState.RUNNING),
        ("Pausing", DriverState.PAUSED),
        ("Paused", DriverState.PAUSED),
        ("Cancelling", DriverState.CANCELLING),
        ("Offline", DriverState.DISCONNECTED),
        ("Offline after error", DriverState.DISCONNECTED),
        ("Closed", DriverState.DISCONNECTED),
        ("Error", DriverState.ERROR),
        ("Error: Thermal Runaway", DriverState.ERROR),
        ("Opening serial connection", DriverState.CONNECTING),
        ("Connecting", DriverState.CONNECTING),
        ("Detecting serial connection", DriverState.CONNECTING),
        ("Detecting baudrate", DriverState.CONNECTING),
    ],
)
def test_known_states(text: str, state: DriverState) -> None:
    assert map_state(text)[0] is state


def test_error_texts_keep_the_message() -> None:
    assert map_state("Error: Thermal Runaway") == (DriverState.ERROR, "Error: Thermal Runaway")
    offline = "Offline (Error: SerialException: device disconnected @ comm.py:_readline:2916)"
    assert map_state(offline) == (DriverState.DISCONNECTED, offline)
    assert map_state("Operational")[1] is None


def test_unknown_state_is_an_error_naming_the_text() -> None:
    state, message = map_state("Transferring file to SD")
    assert state is DriverState.ERROR and message is not None and "Transferring" in message
    assert map_state(None)[0] is DriverState.ERROR
