"""Matching tasks to machines: fit, rotation, materials, nozzle, policy, order, fairness."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from fabnet.core.cron import CronExpr
from fabnet.core.machines import Machine, MachinePolicy, fits
from fabnet.core.matching import MachineIndex, TaskRequest, order_tasks
from fabnet.core.states import MachineKind, MachineState

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)  # a Monday, noon
FDM, CNC = MachineKind.FDM, MachineKind.CNC


def machine(
    mid: str,
    maker: str = "a",
    volume: tuple[float, float, float] = (250, 210, 210),
    materials: tuple[str, ...] = ("PLA",),
    kind: MachineKind = FDM,
    speed: float = 1.0,
    nozzle: float = 0.4,
    policy: MachinePolicy | None = None,
    state: MachineState = MachineState.IDLE,
) -> Machine:
    return Machine(
        machine_id=mid,
        maker_id=maker,
        kind=kind,
        volume_mm=volume,
        nozzle_mm=nozzle,
        materials=frozenset(materials),
        policy=policy or MachinePolicy(),
        state=state,
        speed_factor=speed,
    )


def task(
    tid: str,
    size: tuple[float, float, float] = (20, 20, 20),
    material: str = "PLA",
    kind: MachineKind = FDM,
    hours: float = 1.0,
    priority: int = 0,
    deadline: datetime | None = None,
    nozzle: float | None = None,
) -> TaskRequest:
    return TaskRequest(
        task_id=tid,
        kind=kind,
        material=material,
        size_mm=size,
        estimated_hours=hours,
        nozzle_mm=nozzle,
        priority=priority,
        deadline=deadline,
        created_at=NOW,
    )


def index_of(*machines: Machine, hours: dict[str, float] | None = None) -> MachineIndex:
    index = MachineIndex(hours)
    for m in machines:
        index.upsert(m)
    return index


def pairs(index: MachineIndex, *tasks: TaskRequest) -> dict[str, str]:
    return {a.task_id: a.machine_id for a in index.match(tasks, NOW)}


def test_fit_allows_rotation_about_z_only() -> None:
    assert fits((200, 240, 10), (250, 210, 210))  # rotated 90°
    assert not fits((260, 10, 10), (250, 210, 210))
    assert not fits((10, 10, 211), (250, 210, 210))
    assert fits((250, 210, 210), (250, 210, 210))


def test_too_big_wrong_material_kind_or_nozzle_is_never_matched() -> None:
    index = index_of(machine("mini", volume=(180, 180, 180), materials=("PLA", "PETG")))
    assert pairs(index, task("big", size=(200, 100, 50))) == {}
    assert pairs(index, task("abs", material="ABS")) == {}
    assert pairs(index, task("cut", kind=CNC)) == {}
    assert pairs(index, task("fine", nozzle=0.25)) == {}
    assert pairs(index, task("rot", size=(170, 20, 20), material="PETG")) == {"rot": "mini"}


def test_big_part_goes_to_the_machine_it_fits() -> None:
    index = index_of(
        machine("small", volume=(180, 180, 180)), machine("big", volume=(350, 350, 340))
    )
    assert pairs(index, task("t", size=(300, 20, 20))) == {"t": "big"}


def test_policy_materials_hours_and_windows() -> None:
    petg_only = MachinePolicy(materials_accepted=frozenset({"PETG"}))
    short = MachinePolicy(max_task_hours=2.0)
    evenings = MachinePolicy(windows=(CronExpr.parse("* 18-23 * * *"),))
    index = index_of(
        machine("p", materials=("PLA", "PETG"), policy=petg_only),
        machine("s", maker="b", policy=short, speed=2.0),
        machine("e", maker="c", policy=evenings),
    )
    # 3 nominal hours: 1.5 h on the fast "s" (allowed), "p" refuses PLA, "e" is closed
    assert pairs(index, task("t1", hours=3)) == {"t1": "s"}
    index = index_of(machine("s", policy=short), machine("e", maker="c", policy=evenings))
    assert pairs(index, task("t2", hours=3)) == {}
    index.upsert(machine("e", maker="c", policy=evenings))
    evening = NOW.replace(hour=19)
    assert [a.machine_id for a in index.match([task("t3", hours=3)], evening)] == ["e"]


def test_ask_policy_is_reported() -> None:
    index = index_of(machine("m", policy=MachinePolicy(auto_accept=False)))
    (a,) = index.match([task("t")], NOW)
    assert a.auto_accept is False


def test_priority_then_deadline_order() -> None:
    soon = NOW + timedelta(hours=2)
    later = NOW + timedelta(days=2)
    tasks = [
        task("low"),
        task("late", deadline=later),
        task("soon", deadline=soon),
        task("hi", priority=5),
    ]
    assert [t.task_id for t in order_tasks(tasks)] == ["hi", "soon", "late", "low"]
    index = index_of(machine("only"))
    assert pairs(index, *tasks) == {"hi": "only"}


def test_fairness_spreads_work_across_makers_not_just_the_fastest() -> None:
    machines = [machine("fast1", "a", speed=3.0), machine("fast2", "a", speed=3.0)]
    machines += [machine("slow-b", "b"), machine("slow-c", "c")]
    index = index_of(*machines)
    result = index.match([task(f"t{i}") for i in range(3)], NOW)
    assert sorted(a.maker_id for a in result) == ["a", "b", "c"]
    # ties between makers go to the fastest machine
    assert result[0].machine_id == "fast1"


def test_fairness_prefers_least_recent_hours() -> None:
    index = index_of(machine("a1", "a", speed=5.0), machine("b1", "b"), hours={"a": 40.0, "b": 2.0})
    assert pairs(index, task("t")) == {"t": "b1"}
    index.set_recent_hours({"a": 0.0, "b": 2.0})
    index.upsert(machine("b1", "b"))
    assert pairs(index, task("u")) == {"u": "a1"}


def test_index_updates_incrementally() -> None:
    index = index_of(machine("m"))
    assert pairs(index, task("t1")) == {"t1": "m"}
    assert not index.is_available("m")
    assert pairs(index, task("t2")) == {}  # reserved until its state comes back
    index.upsert(machine("m", state=MachineState.BUSY))
    assert pairs(index, task("t3")) == {}
    index.upsert(machine("m", materials=("PETG",)))
    assert pairs(index, task("t4")) == {}
    assert pairs(index, task("t5", material="PETG")) == {"t5": "m"}
    index.upsert(machine("m"))
    index.remove("m")
    assert pairs(index, task("t6")) == {} and len(index) == 0


def test_avoid_machines_that_failed_the_task() -> None:
    index = index_of(machine("m1", "a"), machine("m2", "b"))
    t = TaskRequest("t", FDM, "PLA", (10, 10, 10), 1.0, avoid_machines=frozenset({"m1"}))
    assert pairs(index, t) == {"t": "m2"}


def test_ten_thousand_machines_one_thousand_tasks_matched_correctly() -> None:
    rng = random.Random(7)
    volumes = [(180.0, 180.0, 180.0), (250.0, 210.0, 210.0), (350.0, 350.0, 340.0)]
    materials = ["PLA", "PETG", "ABS", "TPU"]
    machines = {}
    for i in range(10_000):
        m = machine(
            f"m{i}",
            maker=f"k{i % 2500}",
            volume=rng.choice(volumes),
            materials=tuple(rng.sample(materials, 2)),
            speed=rng.choice([1.0, 1.5, 2.0]),
            policy=MachinePolicy(max_task_hours=rng.choice([None, 4.0])),
        )
        machines[m.machine_id] = m
    index = index_of(*machines.values())
    tasks = {
        f"t{j}": task(
            f"t{j}",
            size=(rng.uniform(10, 340), rng.uniform(10, 200), rng.uniform(5, 300)),
            material=rng.choice(materials),
            hours=rng.uniform(0.5, 8),
            priority=rng.randint(0, 3),
        )
        for j in range(1_000)
    }
    result = index.match(tasks.values(), NOW)
    assert len(result) == 1_000  # enough machines of every kind for every task
    assert len({a.machine_id for a in result}) == len(result)
    makers = {a.maker_id for a in result}
    assert len(makers) == 1_000  # 2,500 makers: fairness gives each task to a new maker
    for a in result:
        m, t = machines[a.machine_id], tasks[a.task_id]
        assert t.material in m.materials and fits(t.size_mm, m.volume_mm)
        assert m.policy.allows_hours(t.estimated_hours / m.speed_factor)
