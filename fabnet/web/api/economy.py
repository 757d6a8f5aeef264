"""``/quotes``, prices, budgeted jobs, acceptance and credits (issue 11). Money is in
milli-credits (``*_mc`` integers) both ways; the currency and a credit's value in it come
with every price so a page can show both."""

from __future__ import annotations

from typing import Any

from fabnet.core import credits as cr
from fabnet.errors import InvalidInput
from fabnet.hub.economy import Economy
from fabnet.hub.economy.pricing import default_per_kg, effective_price
from fabnet.hub.machines import hub_machine_id
from fabnet.hub.service import JobRequest, job_json
from fabnet.store.reviews import Settlement
from fabnet.web.api.context import ApiContext, forbid
from fabnet.web.api.credit_statements import register_statements
from fabnet.web.api.jobs import JOB_SUBMIT
from fabnet.web.auth import MAKER, OPERATOR, REQUESTER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, Schema

MC = {"minimum": 0, "maximum": cr.MAX_AMOUNT_MC}
QUOTE_ASK = Schema(
    "QuoteRequest",
    tuple(f for f in JOB_SUBMIT.fields if f.name in ("design", "quantity", "material")),
)
QUOTE = Schema("Quote", (), open=True, description="lowest/typical/highest_mc, eta_hours, machines")
TERMS = Schema(
    "NetworkTerms",
    (
        Field("fee_percent", "number", required=True, minimum=0, maximum=cr.MAX_FEE_BP / 100),
        Field("currency", "string", required=True, min_length=3, max_length=3),
        Field("credit_value", "number", required=True, minimum=0.001, maximum=1e9,
              description="one credit in the currency"),
    ),
)  # fmt: skip
PRICE = Schema(
    "MachinePrice",
    (
        Field("per_hour_mc", "integer", required=True, **MC),  # type: ignore[arg-type]
        Field("per_kg_mc", "object", required=True, description="{material: mc per kg}"),
    ),
)
BUDGETED = Schema(
    "BudgetedJobSubmit",
    (
        *JOB_SUBMIT.fields,
        Field("budget_cap_mc", "integer", nullable=True, minimum=1, maximum=cr.MAX_AMOUNT_MC,
              description="the most the job may cost; default: the quote's highest price"),
    ),
)  # fmt: skip
REJECT = Schema(
    "Rejection",
    (
        Field("reason", "string", required=True, enum=tuple(r.value for r in cr.RejectReason)),
        Field("detail", "string", max_length=500, default=""),
    ),
)
DISPUTE = Schema("Dispute", (Field("detail", "string", max_length=500, default=""),))
RESOLVE = Schema(
    "DisputeResolution",
    (Field("pay", "boolean", required=True), Field("detail", "string", max_length=500, default="")),
)
GRANT = Schema(
    "Grant",
    (
        Field("user", "string", required=True, min_length=1, max_length=200),
        Field("amount_mc", "integer", required=True, minimum=1, maximum=cr.MAX_AMOUNT_MC),
        Field("ref", "string", required=True, min_length=1, max_length=100,
              description="idempotency reference: the same ref grants once"),
    ),
)  # fmt: skip
ACCOUNT_QUERY = Schema(
    "AccountQuery",
    (
        Field("user", "string", description="operators: another user's account"),
        Field("since", "string", format="date-time"),
        Field("until", "string", format="date-time"),
    ),
)
OBJECT = Schema("EconomyAnswer", (), open=True)


def terms_json(terms: cr.Terms) -> dict[str, Any]:
    return {
        "fee_percent": terms.fee_bp / 100,
        "currency": terms.currency,
        "credit_value": terms.credit_value_milli / 1000,
        "auto_accept_after_h": terms.auto_accept_after_s / 3600,
        "allow_debt_mc": terms.debt_limit_mc,
    }


def settlement_json(done: Settlement) -> dict[str, Any]:
    payment = done.payment
    return {
        "task_id": done.task_id,
        "job_id": done.job_id,
        "review": done.review.value,
        "already": done.already,
        "paid_mc": -sum(leg.amount_mc for leg in payment.legs if leg.amount_mc < 0)
        if payment
        else 0,
        "legs": [{"account": leg.account, "amount_mc": leg.amount_mc} for leg in payment.legs]
        if payment
        else [],
    }


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    economy = Economy(ctx.service, getattr(ctx, "economy_terms", None), ctx.clock)
    store = ctx.service.store
    register_prices(routes, ctx, economy)
    register_acceptance(routes, economy)
    register_statements(routes, ctx)  # /credits/statement[/months], /credits/network

    @routes.route("POST", "/quotes", summary="Price a design: lowest, typical, eta, machines",
                  roles=(REQUESTER, MAKER), body=QUOTE_ASK, response=QUOTE)  # fmt: skip
    def quote(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        answer = economy.quote(body["design"], body["quantity"], body["material"])
        q = answer.quote
        return {
            "design_id": answer.design_id,
            "material": answer.material,
            "quantity": q.quantity,
            "lowest_mc": q.lowest_mc,
            "typical_mc": q.typical_mc,
            "highest_mc": q.highest_mc,
            "eta_hours": q.eta_hours,
            "terms": terms_json(answer.terms),
            "machines": [
                {
                    "machine": m.machine_id,
                    "maker": m.maker_id,
                    "hours_per_part": m.hours_per_part,
                    "total_mc": m.total_mc,
                }
                for m in q.machines
            ],  # fmt: skip
        }

    @routes.route("POST", "/jobs/budgeted", summary="Submit a job holding its budget cap "
                  "from your credits (409: not enough)", roles=(REQUESTER,), body=BUDGETED,
                  response=OBJECT, status=201)  # fmt: skip
    def submit_budgeted(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        me = user_of(user)
        cap = body.pop("budget_cap_mc")
        requester = body.pop("requester") or me.name
        if requester != me.name and not me.is_operator:
            forbid(f"only operators submit for someone else, got requester {requester!r}")
        info, held = economy.submit(JobRequest(requester=requester, **body), cap)
        return {**job_json(info), "budget_cap_mc": held}

    @routes.route("GET", "/credits/balance", summary="An account's balance (own; operators: "
                  "any user's)", query=ACCOUNT_QUERY, response=OBJECT)  # fmt: skip
    def balance(user: User | None, query: dict[str, Any]) -> dict[str, Any]:
        account = _account(user_of(user), query["user"])
        return {"account": account, "balance_mc": store.credits.balance(account),
                "terms": terms_json(economy.terms())}  # fmt: skip

    @routes.route("POST", "/credits/grants", summary="Grant credits to a user (once per ref)",
                  roles=(OPERATOR,), body=GRANT, response=OBJECT, status=201)  # fmt: skip
    def grant(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        store.accounts.user_named(body["user"])  # NotFound: credits only for real users
        new = store.credits.grant(body["ref"], body["user"], body["amount_mc"], ctx.clock(),
                                  memo=f"granted by {user_of(user).name}")  # fmt: skip
        account = cr.user_account(body["user"])
        return {"account": account, "granted": new, "balance_mc": store.credits.balance(account)}


def _account(me: User, user: str | None) -> str:
    if user not in (None, me.name) and not me.is_operator:
        forbid(f"only operators see another user's credits, got user {user!r}")
    return cr.user_account(user or me.name)


def register_prices(routes: ApiRoutes, ctx: ApiContext, economy: Economy) -> None:
    store = ctx.service.store

    @routes.route("GET", "/economy/terms", summary="The network's fee, currency and credit "
                  "value", response=OBJECT)  # fmt: skip
    def get_terms(user: User | None) -> dict[str, Any]:
        return terms_json(economy.terms())

    @routes.route("PUT", "/economy/terms", summary="Set the network's fee, currency and credit "
                  "value (operators)", roles=(OPERATOR,), body=TERMS, response=OBJECT)  # fmt: skip
    def put_terms(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        terms = cr.Terms(
            fee_bp=round(body["fee_percent"] * 100),
            currency=body["currency"],
            credit_value_milli=round(body["credit_value"] * 1000),
            debt_limit_mc=economy.defaults.debt_limit_mc,
            auto_accept_after_s=economy.defaults.auto_accept_after_s,
        )
        store.prices.set_terms(terms, user_of(user).name, ctx.clock())
        return terms_json(economy.terms())

    @routes.route("GET", "/machines/<agent>/<machine>/price", summary="A machine's price, "
                  "defaults filled in", response=OBJECT)  # fmt: skip
    def get_price(user: User | None, agent: str, machine: str) -> dict[str, Any]:
        machine_id = hub_machine_id(agent, machine)
        store.catalog.get_machine(machine_id)  # NotFound
        return _price_json(store.prices.get(machine_id), machine_id, economy)

    @routes.route("PUT", "/machines/<agent>/<machine>/price", summary="Set a machine's price "
                  "(its maker or an operator)", roles=(MAKER,), body=PRICE, response=OBJECT)  # fmt: skip
    def put_price(
        user: User | None, agent: str, machine: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        me = user_of(user)
        machine_id = hub_machine_id(agent, machine)
        if not me.can_manage_machine(machine_id):
            forbid(f"machine {machine_id} is not yours")
        per_kg = body["per_kg_mc"]
        known = default_per_kg(economy.terms())
        for material, value in per_kg.items():
            if material not in known:
                raise InvalidInput(
                    f"per_kg_mc: unknown material {material!r}; one of {', '.join(known)}"
                )
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"per_kg_mc.{material} must be an integer, got {value!r}")
        price = store.prices.set(machine_id, body["per_hour_mc"], per_kg, me.name, ctx.clock())
        return _price_json(price, machine_id, economy)


def _price_json(price: cr.MachinePrice | None, machine_id: str, economy: Economy) -> dict[str, Any]:
    terms = economy.terms()
    full = effective_price(price, machine_id, default_per_kg(terms))
    return {"machine": machine_id, "per_hour_mc": full.per_hour_mc, "per_kg_mc": full.per_kg_mc,
            "set_by_maker": price is not None, "terms": terms_json(terms)}  # fmt: skip


def register_acceptance(routes: ApiRoutes, economy: Economy) -> None:
    store = economy.store

    def own_task(user: User | None, task_id: str) -> User:
        me = user_of(user)
        requester = store.jobs.get(store.tasks.get(task_id).job_id).spec.requester
        if not me.can_see_job(requester):
            forbid(f"task {task_id} belongs to another requester's job")
        return me

    @routes.route("POST", "/tasks/<task_id>/accept", summary="Accept a done part: its maker is "
                  "paid (once)", roles=(REQUESTER,), response=OBJECT)  # fmt: skip
    def accept(user: User | None, task_id: str) -> dict[str, Any]:
        me = own_task(user, task_id)
        return settlement_json(economy.accept(task_id, me.name))

    @routes.route("POST", "/tasks/<task_id>/reject", summary="Send a done part back to the "
                  "queue, once (409 the second time: accept or dispute)", roles=(REQUESTER,),
                  body=REJECT, response=OBJECT)  # fmt: skip
    def reject(user: User | None, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        me = own_task(user, task_id)
        moved = economy.reject(task_id, body["reason"], body["detail"], me.name)
        return {"task_id": task_id, "state": moved.to_state.value}

    @routes.route("POST", "/tasks/<task_id>/dispute", summary="Hold a part rejected once for "
                  "an operator to decide", roles=(REQUESTER,), body=DISPUTE, response=OBJECT)  # fmt: skip
    def dispute(user: User | None, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        me = own_task(user, task_id)
        economy.dispute(task_id, me.name, body["detail"])
        return {"task_id": task_id, "review": cr.Review.DISPUTED.value}

    @routes.route("POST", "/tasks/<task_id>/resolve", summary="End a dispute: pay or void "
                  "(operators)", roles=(OPERATOR,), body=RESOLVE, response=OBJECT)  # fmt: skip
    def resolve(user: User | None, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        economy.resolve(task_id, body["pay"], user_of(user).name, body["detail"])
        review = store.reviews.review_of(task_id)
        return {"task_id": task_id, "review": review.value if review else None}
