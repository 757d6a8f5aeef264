"""OctoPrint's state texts (``GET /api/job`` ``state``, ``/api/printer`` ``state.text``) as ours.

OctoPrint documents the list as not exhaustive and appends details ("Offline after error",
"Error: ...", "Offline (Error: SerialException ...)"), so matching is by prefix.
"""

from __future__ import annotations

from fabnet.drivers.base import DriverState

# longest prefixes first, so "Offline after error" is not read as a bare "Offline"
_PREFIXES: tuple[tuple[str, DriverState], ...] = (
    ("Printing from SD", DriverState.RUNNING),
    ("Printing", DriverState.RUNNING),
    ("Starting", DriverState.RUNNING),
    ("Resuming", DriverState.RUNNING),
    ("Finishing", DriverState.RUNNING),
    ("Pausing", DriverState.PAUSED),
    ("Paused", DriverState.PAUSED),
    ("Cancelling", DriverState.CANCELLING),
    ("Operational", DriverState.IDLE),
    ("Offline after error", DriverState.DISCONNECTED),
    ("Offline", DriverState.DISCONNECTED),
    ("Closed", DriverState.DISCONNECTED),
    ("Error", DriverState.ERROR),
    ("Opening serial connection", DriverState.CONNECTING),
    ("Connecting", DriverState.CONNECTING),
    ("Detecting", DriverState.CONNECTING),
)


def map_state(text: str | None) -> tuple[DriverState, str | None]:
    """Our state for an OctoPrint state text, plus a message when it is an error or unknown."""
    if not text:
        return DriverState.ERROR, "OctoPrint reported no state"
    for prefix, state in _PREFIXES:
        if text.startswith(prefix):
            if state is DriverState.ERROR or "rror" in text:
                return state, text
            return state, None
    return DriverState.ERROR, f"unknown OctoPrint state {text!r}"
