"""Credits (issue 11): accounts, balanced postings and the rules that make them, in integers.

Money is counted in milli-credits (``_mc``, ints; 1 credit = ``MILLI`` mc), never floats. A
``Posting`` is one movement: legs that sum to zero, under an idempotency ``key`` the store
keeps unique, so a completion delivered twice, a restart or a double click moves credits once.
Balances are sums of legs, never kept apart. The accounts:

* ``user:<name>`` — one per person, maker and requester alike: what they earn pays for what
  they ask (prosumers);
* ``maker:<maker_id>`` — earnings of a maker (agent) no user owns yet;
* ``escrow:<job_id>`` — a job's budget cap, held at submit, paid out at acceptance, the rest
  refunded when the job is settled;
* ``hub:fees`` — the network fee; ``hub:issued`` — credits granted into the network (its
  balance is minus the credits in circulation, so the sum over all accounts stays zero);
* ``peer:<hub>`` — a peer hub (issue 12): on the hub that makes a peer's part, the payer of
  that work; on the hub that sent it, what is owed to the peer. The two hubs' accounts of each
  other mirror (one's balance is minus the other's); the peers settle between operators, so
  no debt limit applies;
* ``hub:federation`` — the clearing account between a hub's requesters and its peers: owed
  to a peer when it reports a part done, paid back by the requester who accepts it.

Quotes live in ``fabnet.core.quotes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from fabnet.core.ids import PEER_PREFIX, peer_named
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput

MILLI = 1000  # milli-credits per credit
BP = 10_000  # basis points in 100 %
MAX_AMOUNT_MC = 10**15  # one leg; far beyond any real network, inside BIGINT
MAX_FEE_BP = 5000  # a fee over 50 % is a typo
KEY_MAX = 200
ACCOUNT_MAX = 250
FEE_ACCOUNT = "hub:fees"
ISSUE_ACCOUNT = "hub:issued"
FEDERATION_ACCOUNT = "hub:federation"
DEFAULT_PER_HOUR_MC = 1000  # 1 credit per machine-hour until the maker sets a price
DEFAULT_FEE_BP = 1000  # 10 %
DEFAULT_CREDIT_VALUE_MILLI = 1000  # 1 credit = 1.000 currency unit
DEFAULT_AUTO_ACCEPT_S = 72 * 3600.0


def user_account(name: str) -> str:
    """The one account of user ``name`` (their login, the jobs' ``requester``)."""
    return f"user:{name}"


def maker_account(maker_id: str) -> str:
    """Earnings of maker (agent) ``maker_id`` while no user owns it."""
    return f"maker:{maker_id}"


def escrow_account(job_id: str) -> str:
    """The budget held for job ``job_id``."""
    return f"escrow:{job_id}"


def peer_account(hub: str) -> str:
    """The account of peer hub ``hub`` on this hub's books."""
    if not hub:
        raise InvalidInput("a peer account needs the peer hub's name, got ''")
    return PEER_PREFIX + hub


def peer_of_account(account: str) -> str | None:
    """The peer hub an account belongs to; None for every other account."""
    return peer_named(account)


def requester_account(requester: str) -> str:
    """The account that pays for a job of ``requester``: a person's own, or, for a job a peer
    hub asked for (requester ``peer:<hub>``), that peer's."""
    return requester if peer_of_account(requester) else user_account(requester)


def debt_limit_of(account: str, terms: Terms) -> int | None:
    """How far ``account`` may commit below zero (mc); None: no limit (a peer hub: the
    operators settle between them)."""
    return None if peer_of_account(account) else terms.debt_limit_mc


class PostingKind(StrEnum):
    GRANT = "grant"  # hub:issued -> a user (the operator hands out credits)
    HOLD = "hold"  # requester -> escrow:<job> at submit (the job's cap)
    PAYMENT = "payment"  # escrow (or requester) -> maker + hub:fees at acceptance
    REFUND = "refund"  # escrow:<job> -> requester once the job is settled
    PEER_WORK = "peer_work"  # hub:federation -> peer:<hub> when a peer reports a part done


def grant_key(ref: str) -> str:
    return f"grant:{ref}"


def hold_key(job_id: str) -> str:
    return f"hold:{job_id}"


def pay_key(task_id: str) -> str:
    """One per task, ever: a task rejected and made again is still paid once."""
    return f"pay:{task_id}"


def refund_key(job_id: str) -> str:
    return f"refund:{job_id}"


def peer_work_key(hub: str, origin_task_id: str, part: str = "") -> str:
    """One per part a peer made for a task of this hub (``part``: the peer's own task id for
    it, "" if it did not say): its DONE report sent again, late, or after a restart records
    what is owed once; a part remade after a rejection is a second part."""
    key = f"peer-work:{hub}:{origin_task_id}"
    return f"{key}:{part}" if part else key


def _amount(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer of milli-credits, got {value!r}")
    if abs(value) > MAX_AMOUNT_MC:
        raise InvalidInput(f"{name} must be within ±{MAX_AMOUNT_MC}, got {value}")


@dataclass(frozen=True)
class Leg:
    """``amount_mc`` into ``account`` (negative: out of it)."""

    account: str
    amount_mc: int

    def __post_init__(self) -> None:
        _amount("amount_mc", self.amount_mc)
        if self.amount_mc == 0:
            raise InvalidInput(f"a leg must move credits, got 0 for {self.account!r}")
        if not 0 < len(self.account) <= ACCOUNT_MAX:
            raise InvalidInput(f"account must be 1..{ACCOUNT_MAX} characters, got {self.account!r}")


@dataclass(frozen=True)
class Posting:
    """One balanced movement of credits. Raises ``InvalidInput`` when the legs do not sum to
    zero, there are fewer than two, or the key or time is bad."""

    key: str
    kind: PostingKind
    legs: tuple[Leg, ...]
    at: datetime
    job_id: str | None = None
    task_id: str | None = None
    memo: str = ""

    def __post_init__(self) -> None:
        if not 0 < len(self.key) <= KEY_MAX:
            raise InvalidInput(f"key must be 1..{KEY_MAX} characters, got {self.key!r}")
        require_utc("at", self.at)
        if len(self.legs) < 2:
            raise InvalidInput(f"posting {self.key} needs at least two legs, got {len(self.legs)}")
        total = sum(leg.amount_mc for leg in self.legs)
        if total != 0:
            raise InvalidInput(f"posting {self.key} does not balance: legs sum to {total} mc")

    def amount_for(self, account: str) -> int:
        """What this posting moves into ``account`` (negative: out)."""
        return sum(leg.amount_mc for leg in self.legs if leg.account == account)


def transfer(
    key: str,
    kind: PostingKind,
    source: str,
    target: str,
    amount_mc: int,
    at: datetime,
    *,
    job_id: str | None = None,
    task_id: str | None = None,
    memo: str = "",
) -> Posting:
    """``amount_mc`` (> 0) from ``source`` to ``target``."""
    _amount("amount_mc", amount_mc)
    if amount_mc <= 0:
        raise InvalidInput(f"amount_mc must be > 0, got {amount_mc}")
    if source == target:
        raise InvalidInput(f"a transfer needs two accounts, got {source!r} twice")
    legs = (Leg(source, -amount_mc), Leg(target, amount_mc))
    return Posting(key, kind, legs, at, job_id, task_id, memo)


@dataclass(frozen=True)
class Terms:
    """The operator's terms: fee in basis points (1000 = 10 %) added on top of the maker's
    price, the currency shown beside credits and what one credit is worth in it (milli-units),
    how far into debt a requester may commit (mc), and when the hub accepts for the requester.

    ``require_credits``: every job holds its cost from the requester's credits at submit (its
    budget cap, or the quote's highest price), refused beyond credits + allowed debt. Off (the
    default: a fresh hub of one's own machines needs no bookkeeping to print), only jobs that
    name a budget hold it; the others pay at acceptance from the requester's account, which may
    go below zero.
    """

    fee_bp: int = DEFAULT_FEE_BP
    currency: str = "EUR"
    credit_value_milli: int = DEFAULT_CREDIT_VALUE_MILLI
    debt_limit_mc: int = 0
    auto_accept_after_s: float = DEFAULT_AUTO_ACCEPT_S
    require_credits: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.fee_bp <= MAX_FEE_BP:
            raise InvalidInput(
                f"fee_percent must be 0..{MAX_FEE_BP / 100:g}, got {self.fee_bp / 100:g}"
            )
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise InvalidInput(
                f"currency must be three capital letters (ISO 4217), got {self.currency!r}"
            )
        if not 0 < self.credit_value_milli <= MAX_AMOUNT_MC:
            raise InvalidInput(f"credit_value must be > 0, got {self.credit_value_milli / 1000:g}")
        _amount("debt_limit_mc", self.debt_limit_mc)
        if self.debt_limit_mc < 0:
            raise InvalidInput(
                f"allow_debt_credits must be >= 0, got {self.debt_limit_mc / MILLI:g}"
            )
        if not self.auto_accept_after_s > 0:
            raise InvalidInput(
                f"auto_accept_after_h must be > 0, got {self.auto_accept_after_s / 3600:g}"
            )


@dataclass(frozen=True)
class MachinePrice:
    """A maker's price for one machine: per machine-hour, and per kilogram of each material
    (a material not named has no price here: the caller falls back to the default)."""

    machine_id: str
    per_hour_mc: int = DEFAULT_PER_HOUR_MC
    per_kg_mc: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _amount("per_hour_mc", self.per_hour_mc)
        if self.per_hour_mc < 0:
            raise InvalidInput(f"per_hour_mc must be >= 0, got {self.per_hour_mc}")
        for material, value in self.per_kg_mc.items():
            _amount(f"per_kg_mc.{material}", value)
            if value < 0:
                raise InvalidInput(f"per_kg_mc.{material} must be >= 0, got {value}")


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _exact(name: str, value: float) -> Decimal:
    """A measured quantity (hours, grams) as the decimal it prints as: the one place where a
    float meets money, rounded once, the same way on every machine."""
    if not value >= 0:
        raise InvalidInput(f"{name} must be >= 0, got {value!r}")
    return Decimal(repr(float(value)))


def default_per_kg_mc(cost_per_kg: float, credit_value_milli: int) -> int:
    """The materials table's cost per kg (currency) in milli-credits per kg."""
    milli_currency = _exact("cost_per_kg", cost_per_kg) * 1000
    return _round(milli_currency * MILLI / credit_value_milli)


def price_mc(per_hour_mc: int, per_kg_mc: int, hours: float, grams: float) -> int:
    """The maker's price for ``hours`` machine-hours using ``grams`` of material."""
    time_part = _exact("hours", hours) * per_hour_mc
    material_part = _exact("grams", grams) * per_kg_mc / 1000
    return _round(time_part + material_part)


def fee_mc(price: int, fee_bp: int) -> int:
    """The network fee on a maker's ``price`` (rounded half up)."""
    return (price * fee_bp + BP // 2) // BP


def with_fee(price: int, fee_bp: int) -> int:
    """What the requester pays for a maker's ``price``."""
    return price + fee_mc(price, fee_bp)


def split_total(total: int, fee_bp: int) -> tuple[int, int]:
    """(maker's share, fee) of a requester's ``total`` — the inverse of ``with_fee`` used when a
    budget caps the payment; the two always add up to ``total``."""
    fee = (total * fee_bp + (BP + fee_bp) // 2) // (BP + fee_bp)
    return total - fee, fee


def payment(
    task_id: str,
    job_id: str,
    payer: str,
    maker: str,
    maker_price: int,
    fee_bp: int,
    remaining_mc: int | None,
    at: datetime,
) -> Posting | None:
    """The posting that pays for an accepted task: ``payer`` (the job's escrow, or the
    requester for a job without a budget) -> ``maker`` + the fee. A job never costs more than
    its cap: with ``remaining_mc`` (what is left in escrow) below price + fee, the remainder is
    split in the same proportion. None when nothing is owed."""
    total = with_fee(maker_price, fee_bp)
    share, fee = maker_price, total - maker_price
    if remaining_mc is not None and total > remaining_mc:
        total = max(remaining_mc, 0)
        share, fee = split_total(total, fee_bp)
    if total == 0:
        return None
    legs = [Leg(payer, -total)]
    if maker == payer:  # a prosumer's own part on a job without escrow: only the fee moves
        legs = [Leg(payer, -fee)] if fee else []
    elif share:
        legs.append(Leg(maker, share))
    if fee:
        legs.append(Leg(FEE_ACCOUNT, fee))
    if len(legs) < 2:
        return None
    return Posting(pay_key(task_id), PostingKind.PAYMENT, tuple(legs), at, job_id, task_id)


def can_commit(balance_mc: int, amount_mc: int, debt_limit_mc: int | None) -> bool:
    """Whether an account holding ``balance_mc`` may commit ``amount_mc`` more, going at most
    ``debt_limit_mc`` below zero (None: no limit)."""
    return debt_limit_mc is None or balance_mc - amount_mc >= -debt_limit_mc


def task_budget_mc(remaining_mc: int, tasks_left: int) -> int:
    """A job's remaining escrow shared evenly over its tasks not yet paid: what one of them
    may cost (price + fee) so that the rest can still be made within the cap."""
    if tasks_left < 1:
        return remaining_mc
    return remaining_mc // tasks_left


def fits_budget(
    price: MachinePrice,
    material: str,
    default_per_kg_mc: int,
    hours: float,
    grams: float,
    fee_bp: int,
    budget_mc: int | None,
) -> bool:
    """The matcher's budget rule: may a task of ``hours`` (on this machine) and ``grams`` of
    ``material`` be offered to the machine priced ``price``, with ``budget_mc`` (from
    ``task_budget_mc``; None: no cap) for it?"""
    if budget_mc is None:
        return True
    per_kg = price.per_kg_mc.get(material, default_per_kg_mc)
    return with_fee(price_mc(price.per_hour_mc, per_kg, hours, grams), fee_bp) <= budget_mc


class RejectReason(StrEnum):
    """Why a requester sends a done part back."""

    FAILED_PRINT = "failed_print"
    WRONG_MATERIAL = "wrong_material"
    DAMAGED = "damaged"
    OTHER = "other"


class Review(StrEnum):
    """A done task's settlement: accepted (paid), disputed (held for the operator after a
    second rejection was refused) or voided (the operator decided it is not paid)."""

    ACCEPTED = "accepted"
    DISPUTED = "disputed"
    VOIDED = "voided"

    @property
    def settled(self) -> bool:
        return self is not Review.DISPUTED
