"""Credits between hubs (issue 12): what a peer's part costs, recorded once on each side.

Each hub keeps the other as an account, ``peer:<hub>``, and the two mirror each other:

* on the peer (B) that made the part, its reporter accepts its own done task for origin hub A
  before it reports it done (``charge_peer_task``): B's maker is paid at B's price plus B's
  fee, from account ``peer:A`` — or nothing moves, for work B does not charge for;
* on the origin (A), the DONE report records what B charged once per part
  (``settle_peer_work``): ``hub:federation`` owes ``peer:B`` the amount; when A's requester
  (or the auto-accept) accepts the part, the requester pays that charge plus A's fee into
  ``hub:federation`` (``fabnet.store.reviews``).

So A's balance of ``peer:B`` is minus B's balance of ``peer:A``; what is left between them is
settled by the operators, outside fabnet. Every movement is a balanced posting under a unique
key, so reports sent twice, late or concurrently, and restarts, move credits once.
"""

from __future__ import annotations

from datetime import datetime

from fabnet.core import credits as cr
from fabnet.core.ids import PEER_PREFIX
from fabnet.core.timeutil import require_utc
from fabnet.errors import Conflict, InvalidInput
from fabnet.federation import wire
from fabnet.hub.economy.pricing import default_per_kg
from fabnet.store import Store


def charge_peer_task(
    store: Store,
    task_id: str,
    peer_name: str,
    free: bool,
    terms: cr.Terms | None,
    now: datetime,
) -> int:
    """Peer side: accept local done task ``task_id`` of a job peer hub ``peer_name`` asked for,
    paying its maker at this hub's price and fee from account ``peer:<peer_name>``; with
    ``free`` (an -NC design, or this hub does not charge that peer) accept it unpaid. Returns
    what the peer was charged (mc, fee included; 0 when free or nothing was owed). Calling
    again returns the same amount and pays nothing; ``terms`` None: the defaults, overridden by
    the operator's stored fee as for every payment.

    Raises ``NotFound`` (task), ``Conflict`` (not done, disputed, voided, or not a job of
    that peer)."""
    now = require_utc("now", now)
    task = store.tasks.get(task_id)
    requester = store.jobs.get(task.job_id).spec.requester
    if requester != wire.peer_requester(peer_name):
        raise Conflict(
            f"task {task_id} was asked for by {requester!r}, not by peer hub {peer_name!r}"
        )
    terms = terms or cr.Terms()
    store.reviews.accept(task_id, requester, now, terms, default_per_kg(terms), free=free)
    paid = store.credits.posted_amount(cr.pay_key(task_id), cr.peer_account(peer_name))
    return -(paid or 0)


def settle_peer_work(
    store: Store,
    peer_name: str,
    origin_task_id: str,
    charged_mc: int,
    now: datetime,
    part: str = "",
) -> bool:
    """Origin side: record that peer hub ``peer_name`` charged ``charged_mc`` for a part of
    this hub's task ``origin_task_id`` (its DONE report, counted or late; ``part`` the peer's
    own task id for it): ``hub:federation`` owes ``peer:<peer_name>`` that much. Once per
    (peer, task, part): True when this call recorded it, False when it was recorded before or
    nothing is owed (0). A part remade after the requester rejected the first is a second
    part: the peer charged for both, and this hub's clearing account bears the rejected one.

    Raises ``InvalidInput`` (a negative or non-integer charge, no peer name) and ``NotFound``
    (no such task here)."""
    if not peer_name:
        raise InvalidInput("peer_name must name the peer hub, got ''")
    if isinstance(charged_mc, bool) or not isinstance(charged_mc, int) or charged_mc < 0:
        raise InvalidInput(f"charged_mc must be an integer >= 0, got {charged_mc!r}")
    now = require_utc("now", now)
    task = store.tasks.get(origin_task_id)
    if charged_mc == 0:
        return False
    posting = cr.transfer(
        cr.peer_work_key(peer_name, origin_task_id, part),
        cr.PostingKind.PEER_WORK,
        cr.FEDERATION_ACCOUNT,
        cr.peer_account(peer_name),
        charged_mc,
        now,
        job_id=task.job_id,
        task_id=origin_task_id,
        memo=f"made at hub {peer_name}",
    )
    return store.credits.post(posting)


def peer_balances(store: Store) -> dict[str, int]:
    """Peer hub name -> the balance of its account here (mc): above zero this hub owes the
    peer for work it made, below zero the peer owes this hub."""
    found = store.credits.balances(PEER_PREFIX)
    return {
        name: total for account, total in found.items() if (name := cr.peer_of_account(account))
    }
