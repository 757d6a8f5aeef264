"""Agent CPU per task for the work the agent does on a ``task.assign`` (issue 9): download
over real HTTP, verify, safety check, analysis, and the sim driver's start — ``prepare()``
over the same few distinct files many times, as the bench's 1,000 cube tasks did.

Prints CPU ms per task of the thread doing the work (``time.thread_time``: the HTTP server
thread is not counted) and wall ms. Run: ``.venv/bin/python bench/agent_prepare.py``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import statistics
import tempfile
import threading
import time
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fabnet.agent.artifacts import FetchSettings
from fabnet.agent.overrides import resolve_material
from fabnet.agent.prepare import VERDICTS, VerdictCache, prepare
from fabnet.bus.messages import TaskAssign
from fabnet.drivers.sim import SimDriver
from fabnet.profiles import load_profile

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "gcode"
CUBES = ("prusaslicer", "slic3r")  # sliced for the prusa_mk3s (the Cura one is not)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def files(into: Path) -> list[Path]:
    """Four distinct cube files: the two slicers' for the MK3S, and each with another name in
    its header (a different sha256, as two designs of one shape would be)."""
    out = []
    for slicer in CUBES:
        body = gzip.decompress((DATA / f"cube_xyz_20mm_{slicer}.gcode.gz").read_bytes())
        for variant, head in (("", b""), ("-twin", b"; twin cube\n")):
            out.append(into / f"{slicer}{variant}.gcode")
            out[-1].write_bytes(head + body)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument(
        "--no-cache", action="store_true", help="verify every file (one pass each time)"
    )
    args = parser.parse_args()
    profile = load_profile("prusa_mk3s")
    material = resolve_material(profile, "PLA")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "srv").mkdir()
        served = files(root / "srv")
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root / "srv")))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        hub = f"http://127.0.0.1:{server.server_address[1]}"
        fetch = FetchSettings(timeout_s=5, attempts=1, backoff_s=0.1)
        driver = SimDriver(speed=1e9, min_duration_s=0.0)
        driver.connect()
        cpu_ms, wall_ms = [], []
        verdicts = VerdictCache(0) if args.no_cache else VERDICTS
        for n in range(args.tasks):
            path = served[n % len(served)]
            body = path.read_bytes()
            assign = TaskAssign(
                machine="m", task_id=uuid.uuid4().hex, attempt=1, url=f"{hub}/{path.name}",
                token="t" * 16, size_bytes=len(body), sha256=hashlib.sha256(body).hexdigest(),
                profile=profile.id,
            )  # fmt: skip
            wall, cpu = time.perf_counter(), time.thread_time()
            prepared = prepare(assign, profile, material, root / "work", hub, fetch, verdicts)
            start(driver, prepared)
            cpu_ms.append((time.thread_time() - cpu) * 1000)
            wall_ms.append((time.perf_counter() - wall) * 1000)
            driver.cancel()
            prepared.path.unlink()
        server.shutdown()
    first = cpu_ms[: len(served)]
    rest = cpu_ms[len(served) :] or first
    print(f"{args.tasks} tasks over {len(served)} distinct files")
    print(f"CPU ms/task: mean {statistics.fmean(cpu_ms):.1f}, median {statistics.median(cpu_ms):.1f}"
          f" (first sight of each file {statistics.fmean(first):.1f}, repeats "
          f"{statistics.fmean(rest):.1f})")  # fmt: skip
    print(f"wall ms/task: mean {statistics.fmean(wall_ms):.1f}")


def start(driver: SimDriver, prepared: Any) -> None:
    """Start the job as the agent's runner does."""
    try:
        from fabnet.agent.runner import start_job  # after issue 9: the analysis handed over
    except ImportError:
        driver.start(prepared.path)
    else:
        start_job(driver, prepared)


if __name__ == "__main__":
    main()
