"""Child processes that never outlive the fabnet process that started them.

A hub, agent or demo killed by any signal, SIGKILL included, must not leave a Mosquitto or a
slicer running behind it. Linux's ``PR_SET_PDEATHSIG`` has the kernel send the child SIGKILL
when its parent dies; ``tied_popen`` arranges that between fork and exec. The signal follows
the *thread* that forked the child, so start long-lived children from a thread that lives as
long as they should (the main thread, or the thread that waits for them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent(parent_pid: int) -> None:
    """In the child between fork and exec: ask the kernel for SIGKILL when the parent dies,
    and die now if it already has (the parent may have gone before prctl ran)."""
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def tied_popen(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` whose child is killed when this process dies (see module doc)."""
    if "preexec_fn" in kwargs:
        raise TypeError("tied_popen sets preexec_fn itself")
    parent = os.getpid()
    return subprocess.Popen(args, preexec_fn=lambda: die_with_parent(parent), **kwargs)


def tied_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with the child tied to this process (see ``tied_popen``)."""
    if "preexec_fn" in kwargs:
        raise TypeError("tied_run sets preexec_fn itself")
    parent = os.getpid()
    return subprocess.run(args, preexec_fn=lambda: die_with_parent(parent), **kwargs)
