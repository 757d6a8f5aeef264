"""``/credits/statement``, ``/credits/statement/months`` and ``/credits/network`` (issue 11):
an account's postings with what each earned, spent, paid in fees and held, its months, and
for operators the network's totals and fee income. A user reads their own account; an
operator reads anyone's (``user``) or any account by name (``account``: ``hub:fees``,
``maker:<id>``)."""

from __future__ import annotations

from typing import Any

from fabnet.core import credits as cr
from fabnet.core.timeutil import parse_utc
from fabnet.errors import InvalidInput
from fabnet.hub.economy.statements import (
    line_json,
    month_json,
    network_json,
    network_months,
    network_totals,
    read_statement,
)
from fabnet.store.statement_reads import StatementReads
from fabnet.web.api.context import ApiContext, forbid
from fabnet.web.auth import OPERATOR, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

STATEMENT_QUERY = Schema(
    "StatementQuery",
    (
        Field("user", "string", max_length=200, description="operators: another user's account"),
        Field("account", "string", max_length=cr.ACCOUNT_MAX,
              description="operators: any account (hub:fees, maker:<id>, user:<name>)"),
        Field("since", "string", format="date-time"),
        Field("until", "string", format="date-time"),
    ),
)  # fmt: skip
WINDOW = Schema(
    "TimeWindow",
    (Field("since", "string", format="date-time"), Field("until", "string", format="date-time")),
)
OBJECT = Schema("StatementAnswer", (), open=True)


def account_asked(me: User, user: str | None, account: str | None) -> str:
    """The account a request names: one's own unless an operator names another; 403
    otherwise, 400 for both ``user`` and ``account``."""
    if user is not None and account is not None:
        raise InvalidInput("name either user or account, not both")
    own = cr.user_account(me.name)
    asked = account if account is not None else cr.user_account(user) if user else own
    if asked != own and not me.is_operator:
        forbid(f"only operators see another account's credits, got {asked!r}")
    return asked


def register_statements(routes: ApiRoutes, ctx: ApiContext) -> None:
    reads = StatementReads(ctx.service.store.db)

    def read(user: User | None, query: dict[str, Any]) -> Any:
        account = account_asked(user_of(user), query["user"], query["account"])
        since, until = parse_utc("since", query["since"]), parse_utc("until", query["until"])
        return read_statement(reads, account, since, until)

    @routes.route("GET", "/credits/statement", summary="An account's postings, oldest first: "
                  "amount into it, earned, spent, fees, held, balance after",
                  query=STATEMENT_QUERY, response=ListOf(OBJECT))  # fmt: skip
    def statement(user: User | None, query: dict[str, Any]) -> list[dict[str, Any]]:
        return [line_json(line) for line in read(user, query).lines]

    @routes.route("GET", "/credits/statement/months", summary="An account's earned, spent, "
                  "fees, held and closing balance per month", query=STATEMENT_QUERY,
                  response=OBJECT)  # fmt: skip
    def statement_months(user: User | None, query: dict[str, Any]) -> dict[str, Any]:
        found = read(user, query)
        return {
            "account": found.account,
            "opening_mc": found.opening_mc,
            "closing_mc": found.closing_mc,
            "totals": {name: found.total(name)
                       for name in ("granted_mc", "earned_mc", "spent_mc", "fees_mc", "held_mc")},
            "months": [month_json(m) for m in found.months],
        }  # fmt: skip

    @routes.route("GET", "/credits/network", summary="The network's totals now and per month: "
                  "issued, paid, makers' share, fee income, refunds (operators)",
                  roles=(OPERATOR,), query=WINDOW, response=OBJECT)  # fmt: skip
    def network(user: User | None, query: dict[str, Any]) -> dict[str, Any]:
        since, until = parse_utc("since", query["since"]), parse_utc("until", query["until"])
        months = network_months(reads.network_sums(since, until))
        return network_json(months, network_totals(ctx.service.store.credits.balances()))
