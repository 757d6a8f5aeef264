"""The messages hubs exchange about work (issue 12), as validated values with their JSON form.

Two signed POSTs carry them (``fabnet.federation.signing``):

* ``/federation/v1/tasks`` — the origin hub hands one queued task to a peer: a
  ``TaskTransfer`` (what to make, from which design, under which license and attribution,
  the mesh itself) answered by a ``TransferAnswer``. The origin sent it as offer
  ``offer_no`` of its task to the peer's pseudo-machine ``peer:<name>``; the same task sent
  again later (a new offer number, after a lease expired or an answer was lost) is the same
  part, never a second one.
* ``/federation/v1/reports`` — the peer tells the origin how its tasks stand: a batch of
  ``TaskReport`` answered by one ``ReportResult`` each. The origin keeps the truth: a report
  for an offer it took back is ``stale``, and the peer then stops the work.

Anything malformed raises ``InvalidInput`` naming the field; nothing here touches a store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from fabnet.core.ids import PEER_PREFIX, peer_named
from fabnet.core.states import MachineKind
from fabnet.errors import InvalidInput

TASKS_PATH = "/federation/v1/tasks"
REPORTS_PATH = "/federation/v1/reports"
MAX_MESH_BYTES = 32 * 1024 * 1024  # the largest mesh one transfer carries
MAX_REPORTS = 500  # reports per batch
MAX_TEXT = 400
DEFAULT_PEER_LEASE_S = 900.0  # how long a peer holds a task without a report ([federation])


def peer_machine_id(hub: str) -> str:
    """The machine id under which the origin hub's store records a task held by ``hub``."""
    return PEER_PREFIX + hub


def peer_of_machine(machine_id: str | None) -> str | None:
    """The peer hub holding a task whose machine is ``machine_id``; None for a real machine."""
    return peer_named(machine_id)


def peer_requester(hub: str) -> str:
    """The requester of the job a peer hub makes for origin ``hub`` (also its ledger account:
    what that hub owes for the work, ``fabnet.federation.settlement``)."""
    return PEER_PREFIX + hub


def peer_of_requester(requester: str | None) -> str | None:
    """The origin hub a job is made for; None for a job of a person."""
    return peer_named(requester)


@dataclass(frozen=True)
class DesignPackage:
    """A design as it travels: its record (name, author, license, version, attribution) and
    its mesh. ``sha256`` is the mesh's (a design's id on every hub)."""

    slug: str
    name: str
    author: str
    license: str
    version: str
    filename: str
    mesh: bytes
    sha256: str
    description: str = ""
    source_url: str | None = None
    remix_of: str | None = None

    def __post_init__(self) -> None:
        if len(self.mesh) > MAX_MESH_BYTES:
            raise InvalidInput(f"design.mesh is {len(self.mesh)} bytes, over {MAX_MESH_BYTES}")
        if hashlib.sha256(self.mesh).hexdigest() != self.sha256.lower():
            raise InvalidInput(f"design.sha256 {self.sha256[:16]}… is not the mesh's digest")


@dataclass(frozen=True)
class TaskTransfer:
    """One task handed to a peer: quantity one, of ``design``, in ``material``."""

    origin_task_id: str
    offer_no: int
    origin_job_id: str
    kind: MachineKind
    material: str
    quality: str
    deadline: datetime | None
    lease_s: float
    design: DesignPackage
    # parts of this task the receiving peer made before and the origin's requester rejected:
    # the peer makes a new part when it has made no more than that (else the task came back
    # for another reason, a lease or a lost answer, and the part it made is the one)
    rejected_parts: int = 0

    def __post_init__(self) -> None:
        if self.rejected_parts < 0:
            raise InvalidInput(f"rejected_parts must be >= 0, got {self.rejected_parts!r}")
        if self.offer_no < 1:
            raise InvalidInput(f"offer_no must be >= 1, got {self.offer_no!r}")
        if not self.lease_s > 0:
            raise InvalidInput(f"lease_s must be > 0, got {self.lease_s!r}")


@dataclass(frozen=True)
class TransferAnswer:
    """The peer's answer: it took the task as its own ``task_id``, or why it did not."""

    accepted: bool
    task_id: str | None = None
    why: str = ""


class ReportState(StrEnum):
    """What a peer reports about a task it holds for the origin."""

    PROGRESS = "progress"  # waiting or being made; keeps the origin's lease alive
    STARTED = "started"  # a machine at the peer started on it
    DONE = "done"  # made; ``grams``, ``machine_hours`` and ``charged_mc`` say what it took
    FAILED = "failed"  # the peer could not make it (its attempts ran out)
    RELEASED = "released"  # the peer gave it back unmade (cancelled there, peering ended)

    @property
    def is_final(self) -> bool:
        return self in (ReportState.DONE, ReportState.FAILED, ReportState.RELEASED)


@dataclass(frozen=True)
class TaskReport:
    """One report about origin task ``origin_task_id`` held under offer ``offer_no``.
    ``report_id`` is unique per report; a final report keeps its id when it is sent again,
    so the origin applies it once."""

    report_id: str
    origin_task_id: str
    offer_no: int
    state: ReportState
    fraction: float = 0.0
    grams: float = 0.0
    machine_hours: float = 0.0
    charged_mc: int = 0
    reason: str = ""
    peer_task_id: str = ""  # the peer's own task for the part (one charge per part made)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise InvalidInput(f"fraction must be 0..1, got {self.fraction!r}")
        for name in ("grams", "machine_hours", "charged_mc"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} must be >= 0, got {getattr(self, name)!r}")


class ReportOutcome(StrEnum):
    """What the origin made of one report."""

    APPLIED = "applied"  # the task moved (or its lease was extended)
    DUPLICATE = "duplicate"  # this report was applied before
    STALE = "stale"  # the origin took the task back from this offer: stop the work
    REFUSED = "refused"  # not this peer's task, or figures that cannot be


@dataclass(frozen=True)
class ReportResult:
    report_id: str
    outcome: ReportOutcome
    why: str = ""


# -- JSON ---------------------------------------------------------------------------------


def transfer_json(transfer: TaskTransfer) -> dict[str, Any]:
    d = transfer.design
    return {
        "origin_task_id": transfer.origin_task_id,
        "offer_no": transfer.offer_no,
        "origin_job_id": transfer.origin_job_id,
        "kind": transfer.kind.value,
        "material": transfer.material,
        "quality": transfer.quality,
        "deadline": transfer.deadline.isoformat() if transfer.deadline else None,
        "lease_s": transfer.lease_s,
        "rejected_parts": transfer.rejected_parts,
        "design": {
            "slug": d.slug,
            "name": d.name,
            "author": d.author,
            "license": d.license,
            "version": d.version,
            "filename": d.filename,
            "sha256": d.sha256,
            "description": d.description,
            "source_url": d.source_url,
            "remix_of": d.remix_of,
            "mesh_b64": base64.b64encode(d.mesh).decode("ascii"),
        },
    }


def transfer_from_json(data: Mapping[str, Any]) -> TaskTransfer:
    design = _mapping(data, "design")
    try:
        mesh = base64.b64decode(_text(design, "mesh_b64", "design.", limit=None), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("design.mesh_b64 is not base64") from None
    package = DesignPackage(
        slug=_text(design, "slug", "design."),
        name=_text(design, "name", "design."),
        author=_text(design, "author", "design."),
        license=_text(design, "license", "design."),
        version=_text(design, "version", "design."),
        filename=_text(design, "filename", "design."),
        mesh=mesh,
        sha256=_text(design, "sha256", "design."),
        description=_text(design, "description", "design.", required=False, limit=4000),
        source_url=_optional_text(design, "source_url", "design."),
        remix_of=_optional_text(design, "remix_of", "design."),
    )
    try:
        kind = MachineKind(_text(data, "kind"))
    except ValueError:
        raise InvalidInput(f"kind must be one of fdm, cnc, got {data.get('kind')!r}") from None
    deadline_text = _optional_text(data, "deadline")
    return TaskTransfer(
        origin_task_id=_text(data, "origin_task_id"),
        offer_no=_int(data, "offer_no"),
        origin_job_id=_text(data, "origin_job_id"),
        kind=kind,
        material=_text(data, "material"),
        quality=_text(data, "quality"),
        deadline=_datetime(deadline_text, "deadline") if deadline_text else None,
        lease_s=_number(data, "lease_s"),
        design=package,
        rejected_parts=_int(data, "rejected_parts", default=0),
    )


def answer_json(answer: TransferAnswer) -> dict[str, Any]:
    return {"accepted": answer.accepted, "task_id": answer.task_id, "why": answer.why}


def answer_from_json(data: Mapping[str, Any]) -> TransferAnswer:
    accepted = data.get("accepted")
    if not isinstance(accepted, bool):
        raise InvalidInput(f"accepted must be true or false, got {accepted!r}")
    task_id = _optional_text(data, "task_id")
    if accepted and not task_id:
        raise InvalidInput("an accepted transfer must name the peer's task_id")
    return TransferAnswer(accepted, task_id, _text(data, "why", required=False))


def reports_json(reports: list[TaskReport]) -> dict[str, Any]:
    return {
        "reports": [
            {
                "report_id": r.report_id,
                "origin_task_id": r.origin_task_id,
                "offer_no": r.offer_no,
                "state": r.state.value,
                "fraction": r.fraction,
                "grams": r.grams,
                "machine_hours": r.machine_hours,
                "charged_mc": r.charged_mc,
                "reason": r.reason,
                "peer_task_id": r.peer_task_id,
            }
            for r in reports
        ]
    }


def reports_from_json(data: Mapping[str, Any]) -> list[TaskReport]:
    items = data.get("reports")
    if not isinstance(items, list):
        raise InvalidInput("reports must be a list")
    if len(items) > MAX_REPORTS:
        raise InvalidInput(f"at most {MAX_REPORTS} reports per request, got {len(items)}")
    reports = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"reports[{n}] must be an object")
        where = f"reports[{n}]."
        try:
            state = ReportState(_text(item, "state", where))
        except ValueError:
            choices = ", ".join(s.value for s in ReportState)
            raise InvalidInput(f"{where}state must be one of {choices}") from None
        reports.append(
            TaskReport(
                report_id=_text(item, "report_id", where),
                origin_task_id=_text(item, "origin_task_id", where),
                offer_no=_int(item, "offer_no", where),
                state=state,
                fraction=_number(item, "fraction", where, default=0.0),
                grams=_number(item, "grams", where, default=0.0),
                machine_hours=_number(item, "machine_hours", where, default=0.0),
                charged_mc=_int(item, "charged_mc", where, default=0),
                reason=_text(item, "reason", where, required=False),
                peer_task_id=_text(item, "peer_task_id", where, required=False),
            )
        )
    return reports


def results_json(results: list[ReportResult]) -> dict[str, Any]:
    return {
        "results": [
            {"report_id": r.report_id, "outcome": r.outcome.value, "why": r.why} for r in results
        ]
    }


def results_from_json(data: Mapping[str, Any]) -> list[ReportResult]:
    items = data.get("results")
    if not isinstance(items, list):
        raise InvalidInput("results must be a list")
    results = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"results[{n}] must be an object")
        where = f"results[{n}]."
        try:
            outcome = ReportOutcome(_text(item, "outcome", where))
        except ValueError:
            raise InvalidInput(f"{where}outcome is not a known outcome") from None
        why = _text(item, "why", where, required=False)
        results.append(ReportResult(_text(item, "report_id", where), outcome, why))
    return results


# -- field readers ------------------------------------------------------------------------


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{key} must be an object")
    return value


def _text(data: Mapping[str, Any], key: str, where: str = "", *, required: bool = True,
          limit: int | None = MAX_TEXT) -> str:  # fmt: skip
    value = data.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise InvalidInput(f"{where}{key} must be a non-empty string, got {value!r:.60}")
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"{where}{key} is longer than {limit} characters")
    return value


def _optional_text(data: Mapping[str, Any], key: str, where: str = "") -> str | None:
    if data.get(key) is None:
        return None
    return _text(data, key, where)


def _int(data: Mapping[str, Any], key: str, where: str = "", default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where}{key} must be an integer, got {value!r:.60}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str = "",
            default: float | None = None) -> float:  # fmt: skip
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}{key} must be a number, got {value!r:.60}")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{where}{key} must be finite")
    return float(value)


def _datetime(text: str, key: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{key} must be an ISO 8601 time, got {text!r:.60}") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{key} must carry a UTC offset, got {text!r:.60}")
    return value
