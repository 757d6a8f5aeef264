"""Issue 9, work per task: the agent verifies a file once — downloaded over real HTTP with its
size and sha256 checked, then safety and analysis in one pass — and remembers the verdict by
(sha256, profile, material); the sim driver runs on the analysis handed to it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from agent_harness import ArtifactServer, assign, cube_gcode, new_id

from fabnet.agent.artifacts import FetchSettings
from fabnet.agent.overrides import resolve_material
from fabnet.agent.prepare import PreparedJob, VerdictCache, prepare
from fabnet.agent.runner import start_job
from fabnet.drivers.sim import SimDriver
from fabnet.errors import InvalidInput, SafetyError
from fabnet.gcode import analyse, check
from fabnet.profiles import FdmMaterial, FdmProfile, MachineProfile, load_profile

MK3S = load_profile("prusa_mk3s")
PLA = resolve_material(MK3S, "PLA")
PETG = resolve_material(MK3S, "PETG")
FETCH = FetchSettings(timeout_s=5, attempts=1, backoff_s=0.1)


def run(
    server: ArtifactServer,
    body: bytes,
    work: Path,
    cache: VerdictCache,
    profile: MachineProfile = MK3S,
    material: FdmMaterial | None = PLA,
) -> PreparedJob:
    """Serve ``body`` as a new task's file and prepare it."""
    task = new_id()
    cmd = assign("m", task, server.add(f"{task}.gcode", body), body)
    return prepare(cmd, profile, material, work, server.base_url, FETCH, cache)


def test_the_same_file_is_parsed_once_per_profile_and_material(
    artifacts: ArtifactServer, tmp_path: Path
) -> None:
    cache, body = VerdictCache(), cube_gcode()
    first = run(artifacts, body, tmp_path, cache)
    assert first.analysis == analyse(first.path, MK3S, PLA)
    assert check(first.path, MK3S) == []
    again = run(artifacts, body, tmp_path, cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert again.analysis == first.analysis and again.path != first.path
    assert again.path.read_bytes() == body, "the file itself is still downloaded and verified"
    assert run(artifacts, body, tmp_path, cache, material=PETG).grams > first.grams
    assert isinstance(MK3S, FdmProfile)
    hotter = dataclasses.replace(MK3S, max_hotend_c=MK3S.max_hotend_c + 5)
    run(artifacts, body, tmp_path, cache, profile=hotter)
    assert (cache.hits, cache.misses) == (1, 3), "another material or profile is parsed anew"
    run(artifacts, b"; another design\n" + body, tmp_path, cache)
    assert (cache.hits, cache.misses) == (1, 4)


def test_an_unsafe_file_is_refused_every_time_from_one_verdict(
    artifacts: ArtifactServer, tmp_path: Path
) -> None:
    cache = VerdictCache()
    body = b"G28\nM104 S400\nG1 X10 Y10 F1200\n"
    for _ in range(2):
        with pytest.raises(SafetyError, match=r"line 2: M104 S400 \(over-temperature"):
            run(artifacts, body, tmp_path, cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert list(tmp_path.glob("*.gcode")) == [], "a refused file is not kept"


def test_a_known_sha256_does_not_let_a_different_file_through(
    artifacts: ArtifactServer, tmp_path: Path
) -> None:
    cache, body = VerdictCache(), cube_gcode()
    run(artifacts, body, tmp_path, cache)
    task = new_id()
    cmd = assign("m", task, artifacts.add(f"{task}.gcode", b"M104 S400\n" + body[10:]), body)
    with pytest.raises(InvalidInput, match="artifact s"):
        prepare(cmd, MK3S, PLA, tmp_path, artifacts.base_url, FETCH, cache)
    assert cache.hits == 0 and list(tmp_path.glob("*.gcode")) != []


def test_the_cache_keeps_the_most_recently_used(artifacts: ArtifactServer, tmp_path: Path) -> None:
    cache = VerdictCache(size=2)
    bodies = [f"G28\nG1 X{n} Y10 F1200\n".encode() for n in range(1, 4)]
    for body in (bodies[0], bodies[1], bodies[0], bodies[2], bodies[0]):
        run(artifacts, body, tmp_path, cache)
    assert (cache.hits, cache.misses, len(cache)) == (2, 3, 2)
    run(artifacts, bodies[1], tmp_path, cache)  # pushed out by bodies[2]
    assert cache.misses == 4


def test_the_sim_driver_runs_on_the_handed_over_analysis(
    artifacts: ArtifactServer, tmp_path: Path
) -> None:
    prepared = run(artifacts, cube_gcode(), tmp_path, VerdictCache())
    told = dataclasses.replace(
        prepared, analysis=dataclasses.replace(prepared.analysis, time_s=1e5)
    )
    driver = SimDriver(speed=1.0, min_duration_s=0.0)
    driver.connect()
    try:
        start_job(driver, told)
        status = driver.status()
        assert status.progress.bytes_total == prepared.path.stat().st_size
        remaining = status.progress.remaining_s
        assert remaining is not None and 9e4 < remaining <= 1e5  # not the file's 21 min
    finally:
        driver.cancel()
        driver.disconnect()
