"""The Marlin hello: send ``N0 M110 N0`` until the board answers after its last ``start``, so
line numbering restarts at a point both ends agree on. Apart from ``MarlinDriver`` because it
is the one part of the conversation that must cope with a board that reboots or is busy
while we talk to it, and it runs both on connect and before every file."""

from __future__ import annotations

import time
from collections.abc import Callable

from fabnet.drivers.marlin_protocol import MarlinStream, frame
from fabnet.errors import DeviceTimeout

HELLO = frame(0, "M110 N0")
BOOT_QUIET_S = 0.3  # after "start", the banner is over once the board is quiet this long
HELLO_WAIT_S = 1.0  # an unanswered hello is sent again after this long, unless the board is busy

__all__ = ["HELLO", "handshake"]


def _heard_since(stream: MarlinStream, starts: int, oks: int) -> Callable[[], bool]:
    return lambda: stream.oks_seen > oks or stream.starts_seen > starts


def _oks_reach(stream: MarlinStream, count: int) -> Callable[[], bool]:
    return lambda: stream.oks_seen >= count


def _after(deadline: float) -> Callable[[], bool]:
    return lambda: time.monotonic() > deadline


def handshake(stream: MarlinStream, port: str, timeout_s: float) -> None:
    """Send ``N0 M110 N0`` until an ok comes after the last ``start`` (a booting board
    ignores what it is sent), then restart ``stream``'s numbering. Raises DeviceTimeout if the
    board on ``port`` gives no such answer within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    with stream.cond:
        first_oks, sent = stream.oks_seen, 0
    while time.monotonic() < deadline:
        with stream.cond:
            starts, oks = stream.starts_seen, stream.oks_seen
        stream.send_raw(HELLO)
        sent += 1
        answered = _await_hello(stream, _heard_since(stream, starts, oks), deadline)
        with stream.cond:
            rebooted = stream.starts_seen > starts
        if rebooted:
            time.sleep(BOOT_QUIET_S)
            continue
        if answered:
            if sent > 1:  # a busy board may still answer an earlier hello: let it, first
                stream.wait_for(
                    _oks_reach(stream, first_oks + sent),
                    _after(time.monotonic() + HELLO_WAIT_S),
                )
            stream.restart_numbering()
            return
    raise DeviceTimeout(f"marlin: no answer on {port} within {timeout_s:.0f} s of opening")


def _await_hello(stream: MarlinStream, heard: Callable[[], bool], deadline: float) -> bool:
    """Wait for the hello's answer; a board that says it is busy (a host connecting to one
    mid-print) is waited for rather than sent another hello it would answer too."""
    while True:
        with stream.cond:
            busy = stream.busy_seen
        if stream.wait_for(heard, _after(min(deadline, time.monotonic() + HELLO_WAIT_S))):
            return True
        with stream.cond:
            if stream.busy_seen == busy or time.monotonic() >= deadline:
                return False
