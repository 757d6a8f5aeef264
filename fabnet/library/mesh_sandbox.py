"""Mesh checks of uploaded files in a child process with memory and time limits, so that no
file, however hostile, can take the hub down: the worst it can do is kill its own child.

Children come from a multiprocessing forkserver that has imported the mesh code once (a fresh
interpreter per upload would spend seconds importing trimesh); the forkserver exits with the
process that started it, and each child is limited by ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``
and a wall-clock deadline after which the parent kills it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import threading
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

from fabnet.errors import MeshError, NotFound
from fabnet.library.mesh import MeshReport, check_mesh
from fabnet.library.tolerances import (
    MAX_TRIANGLES,
    MESH_WORK_MEMORY_BYTES,
    MESH_WORK_TIME_S,
    MESH_WORKERS,
)

log = logging.getLogger(__name__)

_lock = threading.Lock()
_context: ForkServerContext | None = None
_slots = threading.BoundedSemaphore(MESH_WORKERS)


def _forkserver() -> ForkServerContext:
    """The forkserver context, its server preloaded with this module (and so trimesh)."""
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            _context = context
        return _context


def _address_space_bytes() -> int:
    """This process's current virtual size (bytes), from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _limit_self(memory_bytes: int, time_s: float) -> None:
    """In the child: at most ``memory_bytes`` more address space and ``time_s`` of CPU."""
    limit = _address_space_bytes() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = max(1, int(time_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _child(
    conn: Connection, path: str, max_triangles: int, memory_bytes: int, time_s: float
) -> None:
    """Run ``check_mesh`` on ``path`` and send back ``("ok", report)`` or an error tuple."""
    try:
        _limit_self(memory_bytes, time_s)
        answer: tuple[Any, ...] = ("ok", check_mesh(Path(path), None, max_triangles))
    except MeshError as exc:
        answer = ("mesh", str(exc), exc.reason, exc.facts)
    except NotFound as exc:
        answer = ("not_found", str(exc))
    except MemoryError:
        answer = ("memory",)
    conn.send(answer)
    conn.close()


def check_upload(
    path: Path,
    max_triangles: int = MAX_TRIANGLES,
    *,
    memory_bytes: int = MESH_WORK_MEMORY_BYTES,
    time_s: float = MESH_WORK_TIME_S,
) -> MeshReport:
    """``check_mesh(path)`` run in a limited child process; the report, as check_mesh gives.

    At most ``MESH_WORKERS`` children run at once; further callers wait for a slot.
    Raises MeshError as check_mesh does, and MeshError ``too_complex`` when the child needs
    more than ``memory_bytes`` of memory or ``time_s`` seconds; NotFound for a missing file.
    """
    path = Path(path)
    with _slots:
        answer, exitcode = _run_child(path, max_triangles, memory_bytes, time_s)
    if answer is None or answer[0] == "memory":
        what = "was killed" if answer is None else "ran out of memory"
        log.warning("mesh check of %s %s (exit code %s)", path.name, what, exitcode)
        raise MeshError(
            f"{path.name}: the mesh is too complex to check: its check {what} within the "
            f"limits of {memory_bytes // (1 << 20)} MiB and {time_s:.0f} s",
            reason="too_complex",
        )
    if answer[0] == "mesh":
        raise MeshError(answer[1], reason=answer[2], **answer[3])
    if answer[0] == "not_found":
        raise NotFound(answer[1])
    report = answer[1]
    assert isinstance(report, MeshReport)
    return report


def _run_child(
    path: Path, max_triangles: int, memory_bytes: int, time_s: float
) -> tuple[tuple[Any, ...] | None, int | None]:
    """(the child's answer or None when it died or ran out of time, its exit code)."""
    context = _forkserver()
    receive, send = context.Pipe(duplex=False)
    args = (send, str(path), max_triangles, memory_bytes, time_s)
    child = context.Process(target=_child, args=args, name="fabnet-mesh-check", daemon=True)
    child.start()
    send.close()
    answer: tuple[Any, ...] | None = None
    try:
        if receive.poll(time_s):
            answer = receive.recv()
    except EOFError:
        answer = None
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
    return answer, child.exitcode
