"""Handing queued tasks to peer hubs (issue 12, the origin's side): each round plans the
overflow (``overflow_plan.plan_overflow``) and sends every task the rule gave a peer.

A task sent to peer B is held on this hub by the pseudo-machine ``peer:B`` and walks the
normal task state machine: ``TaskOffered(peer:B, offer_s=transfer_timeout_s)`` is committed
first, the transfer is recorded, then the signed POST goes out (outside any transaction). B
accepted -> ``TaskAccepted`` and ``TaskAssigned`` under ``peer_lease_s`` (the task is
``preparing`` until B reports); refused or unreachable -> ``TaskDeclined`` (back to the queue)
and a cool-down. A crash between the offer and the answer leaves an offer that lapses through
the normal offer sweep. The license is checked again right before sending: a design whose
license forbids it never leaves, whatever the plan said.

Cool-downs are kept in memory (lost on restart, which at worst sends one more request): a
task refused by a peer is not planned for that peer again for ``cool_down_s`` (``COOL_DOWN_S``;
it may go to another peer meanwhile); a peer that cannot be reached gets nothing for
``unreachable_cool_down_s`` (``UNREACHABLE_COOL_DOWN_S``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from fabnet.core.events import (
    TaskAccepted,
    TaskAssigned,
    TaskDeclined,
    TaskEvent,
    TaskOffered,
)
from fabnet.core.states import AttemptCause
from fabnet.core.tasks import TaskSnapshot, Transition
from fabnet.errors import DeviceError, FabnetError, InvalidInput
from fabnet.federation import wire
from fabnet.federation.advertise import CapacityService
from fabnet.federation.client import PeerClient, PeerRefused
from fabnet.federation.licensing import may_send
from fabnet.federation.overflow import OverflowPolicy
from fabnet.federation.overflow_plan import DEFAULT_POLICY, plan_overflow
from fabnet.federation.peers import PeerService
from fabnet.hub.designs import DesignCatalog
from fabnet.store import Store
from fabnet.store.peer_reports import PeerTransfers, ensure_peer_machine, peer_tasks_in_flight
from fabnet.store.peers import Peer, PeerState

log = logging.getLogger(__name__)

COOL_DOWN_S = 600.0
UNREACHABLE_COOL_DOWN_S = 60.0  # a peer restarting or cut off briefly is tried again soon
TRANSFER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "fabnet:federation:transfers")
SENT = "sent"
ACCEPTED = "accepted"
REFUSED = "refused"
UNREACHABLE = "unreachable"


def transfer_event_id(peer: str, task_id: str, offer_no: int, what: str) -> str:
    """The id of the event ``what`` (accepted, assigned, declined) this hub applies for
    offer ``offer_no`` of a task sent to ``peer``: the same answer applied twice is one."""
    return uuid.uuid5(TRANSFER_NAMESPACE, f"{peer}:{task_id}:{offer_no}:{what}").hex


class Delegator:
    """The overflow round: plan, then send each planned task to its peer (one thread)."""

    def __init__(self, store: Store, peers: PeerService, capacities: CapacityService,
                 designs: DesignCatalog, clock: Callable[[], datetime], *,
                 policy: OverflowPolicy = DEFAULT_POLICY, peer_lease_s: float = wire.DEFAULT_PEER_LEASE_S,
                 transfer_timeout_s: float = 60.0, cool_down_s: float = COOL_DOWN_S,
                 unreachable_cool_down_s: float = UNREACHABLE_COOL_DOWN_S,
                 ) -> None:  # fmt: skip
        for name, value in (("peer_lease_s", peer_lease_s),
                            ("transfer_timeout_s", transfer_timeout_s),
                            ("cool_down_s", cool_down_s),
                            ("unreachable_cool_down_s", unreachable_cool_down_s)):  # fmt: skip
            if not value > 0:
                raise InvalidInput(f"{name} must be > 0, got {value!r}")
        self._store = store
        self._peers = peers
        self._capacities = capacities
        self._designs = designs
        self._clock = clock
        self._policy = policy
        self._lease_s = peer_lease_s
        self._offer_s = transfer_timeout_s
        self._cool_down = timedelta(seconds=cool_down_s)
        self._unreachable_cool_down = timedelta(seconds=unreachable_cool_down_s)
        self._transfers = PeerTransfers(store.db)
        self._task_cool: dict[tuple[str, str], datetime] = {}  # (task, peer) -> until
        self._peer_cool: dict[str, datetime] = {}  # peer -> until (unreachable)
        self._machines: set[str] = set()  # peer machines known to exist

    def round(self) -> dict[str, str]:
        """Plan the overflow and send each task the plan gives a peer: task id -> what
        happened (tasks that stay home are not in the answer)."""
        now = self._clock()
        self._forget_cool_downs(now)
        peers = {p.name: p for p in self._peers.list()
                 if p.state is PeerState.ACTIVE and p.confirmed and p.name not in self._peer_cool}  # fmt: skip
        if not peers:
            return {}
        me = self._peers.require_identity()  # Conflict before any offer when not configured
        client = PeerClient(me.name, me.key, me.max_skew_s, self._clock)
        in_flight = peer_tasks_in_flight(self._store.db)
        avoid: dict[str, set[str]] = {}
        for task_id, peer in self._task_cool:
            avoid.setdefault(task_id, set()).add(peer)
        planned = plan_overflow(self._store, peers.values(), self._capacities.fresh(), now,
                                self._policy, in_flight, avoid=avoid)  # fmt: skip
        results: dict[str, str] = {}
        for plan in planned:
            name = plan.decision.peer
            if name is None:
                log.debug("task %s stays: %s", plan.task_id, plan.decision.reason)
                continue
            if name in self._peer_cool:  # became unreachable earlier in this round
                results[plan.task_id] = f"not sent: {name} is unreachable, cooling down"
                continue
            results[plan.task_id] = self._send(client, plan.task_id, peers[name])
            log.info("task %s to peer %s: %s", plan.task_id, name, results[plan.task_id])
        return results

    def _send(self, client: PeerClient, task_id: str, peer: Peer) -> str:
        """Offer the task to ``peer:<peer>``, send it, apply the answer; what happened."""
        try:
            design = self._package(task_id, peer)
        except FabnetError as exc:
            return f"not sent: {exc}"
        if isinstance(design, str):
            return design
        machine_id = wire.peer_machine_id(peer.name)
        now = self._clock()
        if machine_id not in self._machines:
            ensure_peer_machine(self._store.db, peer.name, now)
            self._machines.add(machine_id)
        offered = self._store.apply_event(
            task_id, TaskOffered(machine_id=machine_id, offer_s=self._offer_s), now
        )
        if not isinstance(offered, Transition):
            return f"not sent: the task is no longer queued ({offered.detail})"
        task, offer_no = offered.task, offered.task.offer_no
        job = self._store.jobs.get(task.job_id).spec
        transfer = wire.TaskTransfer(task_id, offer_no, job.job_id, job.kind, job.material,
                                     job.quality.value, job.deadline, self._lease_s, design,
                                     rejected_parts(task, machine_id))  # fmt: skip
        self._transfers.sending(peer.name, task_id, offer_no, now)
        try:
            answer = wire.answer_from_json(
                client.post(peer, wire.TASKS_PATH, wire.transfer_json(transfer))
            )
        except PeerRefused as exc:
            return self._declined(task_id, peer.name, offer_no, REFUSED, str(exc), peer_wide=False)
        except InvalidInput as exc:  # an answer that is no TransferAnswer
            why = f"answer from {peer.name} not understood: {exc}"
            return self._declined(task_id, peer.name, offer_no, REFUSED, why, peer_wide=False)
        except DeviceError as exc:
            return self._declined(task_id, peer.name, offer_no, UNREACHABLE, str(exc),
                                  peer_wide=True)  # fmt: skip
        if not answer.accepted:
            why = answer.why or "no reason given"
            return self._declined(task_id, peer.name, offer_no, REFUSED, why, peer_wide=False)
        return self._accepted(task_id, peer.name, offer_no, answer)

    def _package(self, task_id: str, peer: Peer) -> wire.DesignPackage | str:
        """The design of the task as it travels, or why it may not (the license, again)."""
        task = self._store.tasks.get(task_id)
        job = self._store.jobs.get(task.job_id).spec
        entry = self._designs.get(job.design_id)
        design = entry.design
        licensed = may_send(design.license, peer.terms.charges_credits)
        if not licensed.allowed:
            return f"not sent: {licensed.reason}"
        try:
            mesh = design.mesh_path.read_bytes()
        except OSError as exc:
            return f"not sent: cannot read the mesh of design {design.slug}: {exc}"
        return wire.DesignPackage(
            slug=design.slug, name=design.name, author=design.author, license=design.license,
            version=design.version, filename=design.mesh_path.name, mesh=mesh,
            sha256=hashlib.sha256(mesh).hexdigest(), description=design.description,
            source_url=design.source_url, remix_of=design.remix_of,
        )  # fmt: skip

    def _accepted(self, task_id: str, peer: str, offer_no: int,
                  answer: wire.TransferAnswer) -> str:  # fmt: skip
        machine_id = wire.peer_machine_id(peer)
        events: list[TaskEvent] = [
            TaskAccepted(machine_id=machine_id, offer_no=offer_no, lease_s=self._lease_s,
                         event_id=transfer_event_id(peer, task_id, offer_no, "accepted")),
            TaskAssigned(machine_id=machine_id, offer_no=offer_no, lease_s=self._lease_s,
                         event_id=transfer_event_id(peer, task_id, offer_no, "assigned")),
        ]  # fmt: skip
        outcomes = self._store.apply_events([(task_id, e) for e in events], self._clock())
        self._transfers.answered(peer, task_id, offer_no, f"{ACCEPTED} as {answer.task_id}")
        if all(isinstance(o, Transition) for o in outcomes):
            return f"{ACCEPTED} by {peer} as its task {answer.task_id}"
        # The offer lapsed while the request was under way: the task is not the peer's any
        # more here; its first report will be stale and the peer stops.
        why = "; ".join(str(getattr(o, "detail", o)) for o in outcomes)
        return f"{ACCEPTED} by {peer} too late, the offer had lapsed: {why}"

    def _declined(self, task_id: str, peer: str, offer_no: int, kind: str, why: str, *,
                  peer_wide: bool) -> str:  # fmt: skip
        if peer_wide:  # unreachable: the whole peer, briefly; the task may go elsewhere
            self._peer_cool[peer] = self._clock() + self._unreachable_cool_down
        else:
            self._task_cool[(task_id, peer)] = self._clock() + self._cool_down
        event = TaskDeclined(machine_id=wire.peer_machine_id(peer), offer_no=offer_no,
                             reason=f"{kind}: {why}"[:500],
                             event_id=transfer_event_id(peer, task_id, offer_no, "declined"))  # fmt: skip
        self._store.apply_event(task_id, event, self._clock())
        self._transfers.answered(peer, task_id, offer_no, f"{kind}: {why}")
        return f"{kind}: {why}"

    def _forget_cool_downs(self, now: datetime) -> None:
        self._task_cool = {k: t for k, t in self._task_cool.items() if t > now}
        self._peer_cool = {k: t for k, t in self._peer_cool.items() if t > now}


def rejected_parts(task: TaskSnapshot, machine_id: str) -> int:
    """Parts ``machine_id`` (a peer) made for ``task`` that its requester rejected: a queued
    task's done attempts were all sent back. The peer makes a new part only when it has made
    no more than these, so a task re-sent after a lapsed lease is bound to the part it made."""
    return sum(
        1 for a in task.attempts if a.machine_id == machine_id and a.cause is AttemptCause.DONE
    )
