"""What a ``--role dispatcher`` process answers over HTTP: ``/healthz``, ``/readyz`` and
``/metrics`` on ``[http] health_port``, nothing else (it serves no API and no G-code).

The same blueprints as the API's (``fabnet.web.health``, ``fabnet.web.metrics``): ``/readyz``
is 503 naming the broker while this process's client is disconnected — a dispatcher that cannot
hear the agents does no work — and ``/metrics`` carries this process's ``HubMetrics`` (offers it
sent, the bus messages it handled) beside the store's counts, for operators only: a bearer
token of an operator account, or the hub's ``api_token``. There are no log-in pages here, so no
session cookie either.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from fabnet.hub.metrics import HubMetrics
from fabnet.store import Store
from fabnet.store.counts import Counts
from fabnet.web.auth import EXTENSION, AuthSettings
from fabnet.web.health import make_health
from fabnet.web.metrics import make_metrics, time_requests

OPS_HTTP_THREADS = 2  # probes and a scrape now and then


def make_ops_app(
    store: Store, metrics: HubMetrics, api_token: str, broker_connected: Callable[[], bool]
) -> Flask:
    """The dispatcher's health and metrics app over ``store`` and this process's figures."""
    app = Flask("fabnet-dispatcher")
    # bearer tokens only: current_user() reads these; without a secret key there is no session
    app.extensions[EXTENSION] = AuthSettings(store.accounts, api_token)
    time_requests(app, metrics)
    app.register_blueprint(make_health(store.db, broker_connected))
    app.register_blueprint(make_metrics(Counts(store.db), metrics))
    return app
