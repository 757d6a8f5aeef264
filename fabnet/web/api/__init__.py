"""``/api/v1``: every route declared with its schemas in one of this package's modules, and
the OpenAPI document generated from those same declarations."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from fabnet.web.api import account, designs, economy, federation, jobs, ledger, machines, offers
from fabnet.web.api.context import ApiContext, BrokerSettings, OfferDecider
from fabnet.web.openapi import ApiRoutes, Endpoint, openapi_document

PREFIX = "/api/v1"


def make_api(ctx: ApiContext) -> tuple[Blueprint, list[Endpoint]]:
    """The API blueprint (mount at ``PREFIX``) and its endpoints."""
    routes = ApiRoutes("api_v1")
    for module in (designs, jobs, machines, offers, ledger, account, economy, federation):
        module.register(routes, ctx)

    @routes.route("GET", "/openapi.json", summary="This document", public=True)
    def openapi(user: object) -> Response:
        return jsonify(openapi_document(routes.endpoints, PREFIX))

    return routes.blueprint, routes.endpoints


__all__ = ["PREFIX", "ApiContext", "BrokerSettings", "OfferDecider", "make_api"]
