"""fabnet.lifetime: a child started with ``tied_popen`` dies when its parent is SIGKILLed, and
one started with plain Popen (the control) does not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from proc_support import pid_alive, wait_gone

from fabnet.lifetime import tied_popen, tied_run

PARENT = """
import subprocess, sys, time
from fabnet.lifetime import tied_popen
if sys.argv[1] == "tied":
    child = tied_popen(["sleep", "60"])
else:
    child = subprocess.Popen(["sleep", "60"])
print(child.pid, flush=True)
time.sleep(120)
"""


def _parent_with_child(mode: str) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def test_tied_child_dies_with_a_sigkilled_parent() -> None:
    parent, child = _parent_with_child("tied")
    assert pid_alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_gone(child), f"sleep {child} outlived its SIGKILLed parent"


def test_plain_child_outlives_its_parent_which_is_why_tied_popen_exists() -> None:
    parent, child = _parent_with_child("plain")
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        time.sleep(0.5)
        assert pid_alive(child)
    finally:
        os.kill(child, signal.SIGKILL)


def test_tied_run_returns_like_subprocess_run() -> None:
    done = tied_run(["sh", "-c", "echo hi"], capture_output=True, text=True, check=True)
    assert done.stdout == "hi\n"


def test_tied_popen_refuses_a_preexec_fn_of_its_own() -> None:
    try:
        tied_popen(["true"], preexec_fn=lambda: None)
    except TypeError as exc:
        assert "preexec_fn" in str(exc)
    else:
        raise AssertionError("tied_popen accepted preexec_fn")
