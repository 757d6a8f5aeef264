"""What people ask of a hub (submit, list, show, cancel), shared by the REST API and the demo.

Validation of requests happens here, once, and names the field and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fabnet.core.ids import new_id
from fabnet.core.jobs import JobSpec, Quality
from fabnet.core.states import MachineKind, TaskState
from fabnet.core.timeutil import parse_utc
from fabnet.errors import Conflict, InvalidInput
from fabnet.hub.designs import DesignCatalog, estimate_part
from fabnet.hub.machines import split_machine_id
from fabnet.profiles import CncMaterial, load_materials
from fabnet.store import Store
from fabnet.store.jobs import JobInfo

MAX_QUANTITY = 10_000
MAX_PRIORITY = 100


@dataclass(frozen=True)
class JobRequest:
    """A requester's order as it arrives (strings and numbers from JSON or the CLI)."""

    design: str
    quantity: int
    material: str
    quality: str = "normal"
    priority: int = 0
    deadline: str | None = None
    requester: str = "anonymous"


class HubCommands(Protocol):
    """What the hub tells machines: the ``Dispatcher`` in the one-process role, the ``api``
    role's ``fabnet.hub.commands.ApiCommands`` otherwise. The web layer calls these through
    the service and never builds a bus message itself."""

    def answer_offer(
        self, agent: str, machine: str, task_id: str, offer_no: int, accept: bool, reason: str = ""
    ) -> None: ...

    def control_task(self, task_id: str, pause: bool) -> None: ...

    def configure_machine(
        self,
        machine_id: str,
        material: str,
        materials: tuple[str, ...],
        max_task_hours: float | None,
        auto_accept: bool,
        windows: tuple[str, ...],
    ) -> bool: ...

    def cancel_job(self, job_id: str, reason: str) -> None: ...


class OfferAnswers:
    """A maker's answer to an offer (API or dashboard), applied by the hub's commands as if
    their agent had sent it."""

    def __init__(self, commands: HubCommands) -> None:
        self._commands = commands

    def decide(
        self, machine_id: str, task_id: str, offer_no: int, accept: bool, reason: str
    ) -> None:
        agent, machine = split_machine_id(machine_id)
        self._commands.answer_offer(agent, machine, task_id, offer_no, accept, reason)


class HubService:
    """Submit and follow jobs on one hub; ``cancel_tasks`` tells the machines holding them."""

    def __init__(
        self,
        store: Store,
        designs: DesignCatalog,
        cancel_tasks: Callable[[str, str], None],
        max_attempts: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        control_task: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.store = store
        self.designs = designs
        self._cancel_tasks = cancel_tasks
        self._control_task = control_task
        self._max_attempts = max_attempts
        self._clock = clock

    @property
    def max_attempts(self) -> int:
        """Attempts a task of this hub gets before it fails for good ([hub] max_attempts)."""
        return self._max_attempts

    def submit(self, request: JobRequest) -> JobInfo:
        """Validate and queue a job; raises InvalidInput / NotFound naming the bad field."""
        if not 1 <= request.quantity <= MAX_QUANTITY:
            raise InvalidInput(f"quantity must be 1..{MAX_QUANTITY}, got {request.quantity}")
        if not -MAX_PRIORITY <= request.priority <= MAX_PRIORITY:
            raise InvalidInput(
                f"priority must be -{MAX_PRIORITY}..{MAX_PRIORITY}, got {request.priority}"
            )
        try:
            quality = Quality(request.quality)
        except ValueError:
            choices = ", ".join(q.value for q in Quality)
            raise InvalidInput(
                f"quality must be one of {choices}, got {request.quality!r}"
            ) from None
        try:
            material = load_materials().get(request.material)
        except KeyError as exc:
            raise InvalidInput(f"material: {exc.args[0]}") from None
        deadline = parse_utc("deadline", request.deadline)
        entry = self.designs.resolve(request.design)
        hours, _ = estimate_part(entry.facts, material.name)
        kind = MachineKind.CNC if isinstance(material, CncMaterial) else MachineKind.FDM
        now = self._clock()
        spec = JobSpec(
            job_id=new_id(),
            requester=request.requester,
            design_id=entry.design_id,
            kind=kind,
            material=material.name,
            quantity=request.quantity,
            part_size_mm=entry.facts.size_mm,
            hours_per_part=hours,
            quality=quality,
            priority=request.priority,
            deadline=deadline,
            max_attempts=self.max_attempts,
            created_at=now,
        )
        return self.store.jobs.submit(spec, now)

    def cancel(self, job_id: str, reason: str = "cancelled by requester") -> JobInfo:
        info = self.store.jobs.get(job_id)
        if info.state.value in ("done", "failed", "cancelled"):
            raise Conflict(f"job {job_id} is already {info.state.value}")
        self._cancel_tasks(job_id, reason)
        return self.store.jobs.get(job_id)

    def pause(self, task_id: str, pause: bool = True) -> None:
        """Pause (or resume) a running task on its machine; Conflict when it is not running."""
        if self._control_task is None:
            raise Conflict("this hub cannot reach machines (no dispatcher)")
        self._control_task(task_id, pause)

    def task(self, task_id: str) -> dict[str, Any]:
        snapshot = self.store.tasks.get(task_id)
        data = task_json(snapshot)
        data["attempts"] = [
            {
                "number": a.number,
                "machine": a.machine_id,
                "started_at": a.started_at.isoformat(),
                "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                "cause": a.cause.value if a.cause else None,
                "detail": a.detail,
                "failure": a.failure.value if a.failure else None,
            }
            for a in snapshot.attempts
        ]
        return data


def job_json(info: JobInfo) -> dict[str, Any]:
    spec = info.spec
    return {
        "id": spec.job_id,
        "requester": spec.requester,
        "design_id": spec.design_id,
        "material": spec.material,
        "quantity": spec.quantity,
        "quality": str(spec.quality),
        "priority": spec.priority,
        "deadline": spec.deadline.isoformat() if spec.deadline else None,
        "state": info.state.value,
        "tasks": {state.value: n for state, n in info.tasks_by_state.items() if n},
        "done": info.tasks_by_state.get(TaskState.DONE, 0),
        "created_at": spec.created_at.isoformat() if spec.created_at else None,
    }


def task_json(task: Any) -> dict[str, Any]:
    return {
        "id": task.task_id,
        "job_id": task.job_id,
        "state": task.state.value,
        "machine": task.machine_id,
        "offer_no": task.offer_no,
        "progress": task.progress,
        "lease_until": task.lease_until.isoformat() if task.lease_until else None,
    }
