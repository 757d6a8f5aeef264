"""``/credits``: a person's statement — earned as a maker, spent as a requester (a prosumer sees
both), fees, held in escrow, per month with a chart of earnings — and, for operators, the
network's totals and fee income. ``economy()`` is the hub's economy as the API runs it."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request

from fabnet.core import credits as cr
from fabnet.hub.economy import Economy
from fabnet.hub.economy.statements import (
    Statement,
    credits_text,
    network_months,
    network_totals,
    read_statement,
)
from fabnet.store.statement_reads import StatementReads
from fabnet.web.auth import User, current_user, require_login
from fabnet.web.charts import month_columns
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.render import page_blueprint, render

bp = page_blueprint("credits")
LINES_SHOWN = 50
API_CONTEXT = "fabnet_api_context"  # set by create_app


def economy() -> Economy:
    """The economy with the terms the API was given (the config's ``[economy]``)."""
    ctx = current_app.extensions.get(API_CONTEXT)
    return Economy(dashboard().service, getattr(ctx, "economy_terms", None))


def _credits(mc: int) -> float:
    return mc / cr.MILLI


def statement_view(found: Statement, user: User | None) -> dict[str, Any]:
    """What the page shows of a statement; ``user`` None: an account no person logs in as."""
    earned = found.total("earned_mc")
    spent = found.total("spent_mc")
    return {
        "account": found.account,
        "balance": credits_text(found.closing_mc),
        "earned": credits_text(earned),
        "spent": credits_text(spent),
        "fees": credits_text(found.total("fees_mc")),
        "held": credits_text(found.total("held_mc")),
        "granted": credits_text(found.total("granted_mc")),
        # a side shows when the person has its role, or when credits moved on it anyway
        "maker_side": (user is not None and user.is_maker) or earned > 0,
        "requester_side": (user is not None and user.is_requester) or spent > 0,
        "months": list(reversed(found.months)),
        "lines": list(reversed(found.lines[-LINES_SHOWN:])),
        "chart": month_columns(
            [
                (m.month, {"earned": _credits(m.earned_mc), "spent": _credits(m.spent_mc)})
                for m in found.months
            ],
            keys=("earned", "spent"),
            unit="credits",
            title="Earnings by month",
        ),  # fmt: skip
    }


@bp.get("/credits")
@require_login()
def credits_page() -> str:
    """Mine; an operator: the network, and anyone's with ``?user=``."""
    user = current_user()
    assert user is not None
    state = dashboard()
    reads = StatementReads(state.service.store.db)
    asked = request.args.get("user") or None
    if asked is not None and asked != user.name and not user.is_operator:
        abort(403, description="only operators see another person's credits")
    terms = economy().terms()
    mine = None
    if asked is not None or not user.is_operator or user.is_maker or user.is_requester:
        name = asked or user.name
        person = user if name == user.name else None
        if person is None:
            account = state.service.store.accounts.user_named(name)  # NotFound: 404
            person = User.from_account(account)
        mine = statement_view(read_statement(reads, cr.user_account(name), None, None), person)
        mine["name"] = name
    network = _network(reads) if user.is_operator else None
    return render("credits.html", mine=mine, network=network, terms=terms, money=credits_text,
                  value=terms.credit_value_milli / 1000)  # fmt: skip


def _network(reads: StatementReads) -> dict[str, Any]:
    store = dashboard().service.store
    totals = network_totals(store.credits.balances())
    months = network_months(reads.network_sums())
    return {
        "issued": credits_text(totals.issued_mc),
        "circulating": credits_text(totals.circulating_mc),
        "escrow": credits_text(totals.escrow_mc),
        "fees": credits_text(totals.fees_mc),
        "between_hubs": credits_text(totals.between_hubs_mc),
        "accounts": totals.accounts,
        "months": list(reversed(months)),
        "chart": month_columns(
            [(m.month, {"fees": _credits(m.fees_mc), "paid": _credits(m.paid_mc)}) for m in months],
            keys=("fees", "paid"),
            unit="credits",
            title="Fee income by month",
        ),  # fmt: skip
    }
