"""Taking a task from an origin hub (issue 12): ``POST /federation/v1/tasks`` checked against
what this hub shares with that peer, the design imported into the library if it is new here,
a job of quantity one made for requester ``peer:<origin>`` and the binding recorded that the
reporter (``fabnet.federation.reporting``) works from.

The same origin task may arrive more than once — the same offer again (an answer lost), a
later offer after the origin's lease ran out, or at the same moment through two API
processes — and is still made once: the local job's id is derived from the origin task (and
a generation, bumped only when the local task failed or was cancelled here), so every
receipt makes or finds the same job, and the binding's unique (origin, task) row decides
which receipt binds it. A refusal writes nothing.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from fabnet.bus.topics import check_id
from fabnet.core.jobs import JobSpec, Quality
from fabnet.core.states import MachineKind, TaskState
from fabnet.errors import Conflict, FabnetError, InvalidInput, NotFound
from fabnet.federation import wire
from fabnet.federation.inbound import Verified
from fabnet.federation.licensing import may_send
from fabnet.federation.peers import PeerService
from fabnet.hub.designs import DesignEntry, accept_facts, estimate_part
from fabnet.hub.service import HubService
from fabnet.library.catalog import add_design
from fabnet.library.design import load_design
from fabnet.library.design_toml import DesignRecord, check_slug
from fabnet.library.mesh_io import MESH_SUFFIXES
from fabnet.profiles import CncMaterial, load_materials
from fabnet.store.foreign_tasks import Binding, ForeignTasks
from fabnet.store.peers import Peer

log = logging.getLogger(__name__)

# Local job ids are uuid5 of (origin, origin task, generation) in this namespace: fixed
# forever, or a receipt after an upgrade would make a second job for the same part.
JOB_NAMESPACE = uuid.UUID("8d0b5b4e-3f0a-5c57-9a43-6f1d1e0c2a71")
DEAD_STATES = frozenset({TaskState.FAILED, TaskState.CANCELLED})
BIND_TRIES = 4  # a receipt losing the race to bind re-reads and decides again
MAX_SLUG = 80


class _Raced(Exception):
    """Another receipt changed the binding between our read and our write: read again."""


class Intake:
    """Receives transfers from peers (a ``PeerHandler``)."""

    def __init__(self, service: HubService, peers: PeerService,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self._service = service  # the hub's: its store, its library, its max_attempts
        self._store = service.store
        self._designs = service.designs
        self._peers = peers
        self._clock = clock
        self.foreign = ForeignTasks(service.store.db)

    def receive(self, verified: Verified, payload: dict[str, Any]) -> dict[str, Any]:
        """Take (or refuse) one transfer from a verified peer; the answer is a
        ``TransferAnswer``. InvalidInput for a malformed transfer; a refusal is an answer
        with ``accepted`` false and why, and changes nothing."""
        transfer = wire.transfer_from_json(payload)
        check_id(transfer.origin_task_id, "origin_task_id")
        check_id(transfer.origin_job_id, "origin_job_id")
        try:
            Quality(transfer.quality)
        except ValueError:
            choices = ", ".join(q.value for q in Quality)
            raise InvalidInput(f"quality must be one of {choices}, "
                               f"got {transfer.quality!r:.40}") from None  # fmt: skip
        answer = self.take(verified.peer, transfer)
        return wire.answer_json(answer)

    def take(self, peer: Peer, transfer: wire.TaskTransfer) -> wire.TransferAnswer:
        """Bind ``transfer`` from ``peer`` to a local task (made, found or re-bound)."""
        for _ in range(BIND_TRIES):
            try:
                return self._decide(
                    peer, transfer, self.foreign.get(peer.name, transfer.origin_task_id)
                )
            except _Raced:
                continue
        raise Conflict(f"task {transfer.origin_task_id} of {peer.name} is being re-bound by "
                       "concurrent requests; send it again")  # fmt: skip

    def _decide(self, peer: Peer, transfer: wire.TaskTransfer,
                read: Binding | None) -> wire.TransferAnswer:  # fmt: skip
        now = self._clock()
        if read is not None:
            if transfer.offer_no < read.offer_no:
                return _refused(f"offer {transfer.offer_no} of task {transfer.origin_task_id} "
                                f"is stale: offer {read.offer_no} is held here")  # fmt: skip
            if transfer.offer_no == read.offer_no:
                return _accepted(read)  # the same transfer again: the same answer
            local = self._store.tasks.get(read.local_task_id)
            if local.state not in DEAD_STATES and not self._remake(peer.name, transfer, read):
                again = replace(read, offer_no=transfer.offer_no,
                                origin_job_id=transfer.origin_job_id)  # fmt: skip
                if not self.foreign.rebind(read, again, now):
                    raise _Raced
                log.info(
                    "task %s of %s re-bound to local task %s under offer %d",
                    read.origin_task_id,
                    peer.name,
                    read.local_task_id,
                    again.offer_no,
                )
                return _accepted(again)
        why = self._refusal(peer, transfer, holding=read is not None and read.is_open)
        if why:
            log.info("transfer of task %s from %s refused: %s", transfer.origin_task_id,
                     peer.name, why)  # fmt: skip
            return _refused(why)
        generation = 1 if read is None else read.generation + 1
        try:
            entry = self._design(peer.name, transfer.design, now)
        except FabnetError as exc:  # mesh refused, license of a remix, no library folder…
            return _refused(f"design {transfer.design.slug}: {exc}")
        binding = self._local_job(peer.name, transfer, entry, generation, now)
        written = (self.foreign.insert(binding, now) if read is None
                   else self.foreign.rebind(read, binding, now))  # fmt: skip
        if not written:
            raise _Raced
        log.info("task %s of %s taken as local task %s (job %s)", transfer.origin_task_id,
                 peer.name, binding.local_task_id, binding.local_job_id)  # fmt: skip
        return _accepted(binding)

    def _remake(self, origin: str, transfer: wire.TaskTransfer, read: Binding) -> bool:
        """True when the origin's requester rejected the part made here and a new one is
        wanted: the local part is done and the origin counts as many rejected parts from this
        hub as were made here (fewer: the task came back for another reason, a lapsed lease or
        a lost answer, and the part made here is the one)."""
        if transfer.rejected_parts == 0:
            return False
        made = 0
        for generation in range(1, read.generation + 1):
            job_id = local_job_id(origin, transfer.origin_task_id, generation)
            tasks = self._store.tasks.find(job_id=job_id)
            made += sum(1 for t in tasks if t.state is TaskState.DONE)
        local = self._store.tasks.get(read.local_task_id)
        return local.state is TaskState.DONE and transfer.rejected_parts >= made

    def _refusal(self, peer: Peer, transfer: wire.TaskTransfer, *, holding: bool) -> str:
        """Why this hub will not take ``transfer`` from ``peer`` as a new task ('' if it
        will): its terms for that peer, the material, the license, the cap in flight (of which
        the task's own dead binding, ``holding``, is not one more)."""
        terms = peer.terms
        if transfer.kind.value not in terms.kinds:
            return f"{transfer.kind.value} work is not shared with {peer.name}"
        try:
            material = load_materials().get(transfer.material)
        except KeyError:
            return f"material {transfer.material!r} is unknown here"
        kind = MachineKind.CNC if isinstance(material, CncMaterial) else MachineKind.FDM
        if kind is not transfer.kind:
            return f"material {material.name} is {kind.value} work, not {transfer.kind.value}"
        if terms.materials and material.name not in terms.materials:
            return f"material {material.name} is not shared with {peer.name}"
        decision = may_send(transfer.design.license, peer_charges_credits=terms.charges_credits)
        if not decision.allowed:
            return decision.reason
        if self.foreign.count_open(peer.name) - holding >= terms.max_in_flight:
            return f"{peer.name} has {terms.max_in_flight} tasks in flight here already"
        return ""

    def _design(self, origin: str, package: wire.DesignPackage, now: datetime) -> DesignEntry:
        """The design of ``package`` here: known by its sha256, or imported into the hub's
        library folder (record kept; slug ``<origin>-<slug>``). FabnetError if refused."""
        try:
            return self._designs.get(package.sha256.lower())
        except NotFound:
            pass
        directory = self._designs.library_dir
        if directory is None:
            raise Conflict("this hub has no library folder to import designs into")
        suffix = Path(package.filename).suffix.lower()
        if suffix not in MESH_SUFFIXES:
            raise InvalidInput(f"filename must end in {', '.join(MESH_SUFFIXES)}, "
                               f"got {package.filename!r:.80}")  # fmt: skip
        record = DesignRecord(
            name=package.name,
            author=package.author,
            license=package.license,
            version=package.version,
            mesh="",
            description=package.description,
            remix_of=_parent(origin, package.remix_of, directory),
            source_url=package.source_url,
        )
        slug = local_slug(origin, package.slug)
        with tempfile.TemporaryDirectory(prefix="fabnet-transfer-") as folder:
            path = Path(folder) / f"{slug}{suffix}"
            path.write_bytes(package.mesh)
            for candidate in (slug, _suffixed(slug, package.sha256)):
                try:
                    added = add_design(path, candidate, record, directory, accept_facts)
                except (Conflict, OSError):  # imported by a concurrent receipt, or a namesake
                    if not (directory / candidate).is_dir():
                        raise
                    existing = load_design(candidate, directory)
                    if existing.sha256 == package.sha256.lower():
                        return self._designs.register(existing, now)
                    continue
                log.info("design %s of %s imported as %s", package.slug, origin, candidate)
                return self._designs.register(added.design, now, added.facts)
        raise Conflict(f"design slug {slug} is taken here by another design")

    def _local_job(self, origin: str, transfer: wire.TaskTransfer, entry: DesignEntry,
                   generation: int, now: datetime) -> Binding:  # fmt: skip
        """Make (or find, when a concurrent receipt or one before a crash made it) the local
        job of ``transfer``'s generation ``generation``; its binding, not yet written."""
        job_id = local_job_id(origin, transfer.origin_task_id, generation)
        material = load_materials().get(transfer.material)
        hours, _ = estimate_part(entry.facts, material.name)
        spec = JobSpec(
            job_id=job_id,
            requester=wire.peer_requester(origin),
            design_id=entry.design_id,
            kind=transfer.kind,
            material=material.name,
            quantity=1,
            part_size_mm=entry.facts.size_mm,
            hours_per_part=hours,
            quality=Quality(transfer.quality),
            deadline=transfer.deadline.astimezone(UTC) if transfer.deadline else None,
            max_attempts=self._service.max_attempts,  # [hub] max_attempts, as local jobs
            created_at=now,
        )
        try:
            self._store.jobs.submit(spec, now)
        except (InvalidInput, IntegrityError):
            pass  # "job_id already exists": the same part, made by another receipt
        tasks = self._store.tasks.find(job_id=spec.job_id)
        if len(tasks) != 1:
            raise Conflict(f"local job {spec.job_id} for task {transfer.origin_task_id} "
                           f"has {len(tasks)} tasks, not one")  # fmt: skip
        return Binding(origin, transfer.origin_task_id, transfer.origin_job_id,
                       transfer.offer_no, generation, spec.job_id, tasks[0].task_id,
                       entry.design_id, transfer.design.license)  # fmt: skip


def local_job_id(origin: str, origin_task_id: str, generation: int) -> str:
    """The id of the local job for generation ``generation`` of an origin's task: derived, so
    two receipts of one transfer (or one before a crash) make the same job, not two."""
    return uuid.uuid5(JOB_NAMESPACE, f"{origin}:{origin_task_id}:{generation}").hex


def local_slug(origin: str, slug: str) -> str:
    """The slug an origin's design gets here: ``<origin>-<slug>``, lower-case-hyphenated."""
    text = f"{origin}-{slug}".lower()
    cleaned = "-".join(part for part in "".join(
        c if c.isascii() and c.isalnum() else "-" for c in text).split("-") if part)  # fmt: skip
    return check_slug(cleaned[:MAX_SLUG].strip("-") or "design")


def _suffixed(slug: str, sha256: str) -> str:
    """A second choice of slug, for a namesake of another content."""
    tail = f"-{sha256[:12].lower()}"
    return slug[: MAX_SLUG - len(tail)].strip("-") + tail


def _parent(origin: str, remix_of: str | None, directory: Path) -> str | None:
    """The local slug of the parent a remix names, when that parent was imported from the
    same origin before; None otherwise (the library refuses a remix of an unknown parent)."""
    if remix_of is None:
        return None
    try:
        return load_design(local_slug(origin, remix_of), directory).slug
    except FabnetError:  # not imported before (NotFound), or its files are bad
        return None


def _accepted(binding: Binding) -> wire.TransferAnswer:
    return wire.TransferAnswer(True, binding.local_task_id)


def _refused(why: str) -> wire.TransferAnswer:
    return wire.TransferAnswer(False, None, why)
