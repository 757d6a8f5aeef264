"""The hub process: store, bus, dispatcher, scheduler and HTTP server wired together."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from werkzeug.serving import BaseWSGIServer, make_server

from fabnet import __version__
from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.config import HubConfig
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatcher import Dispatcher
from fabnet.hub.service import HubService
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.app import WebSettings

log = logging.getLogger(__name__)


class Hub:
    """One hub. ``start`` returns once it listens; ``stop`` undoes everything ``start`` did."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.database_url)
        self.designs = DesignCatalog(self.store)
        self.artifacts = ArtifactStore(
            config.data_dir / "artifacts", config.slicer, config.machine_slicers
        )
        b = config.broker
        settings = BusSettings(
            b.host, b.port, b.username, b.password, client_id=f"fabnet-hub-{config.hub_id}"
        )
        gone = msg.HubStatus(hub_id=config.hub_id, state=msg.HubState.GONE, version=__version__)
        self.bus = BusClient(settings, will=(topics.hub_status(), gone))
        self._http: BaseWSGIServer | None = None
        self.public_url = config.public_url
        self.dispatcher: Dispatcher | None = None
        self.service: HubService | None = None
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        now = datetime.now(UTC)
        count = self.designs.register_library(now)
        log.info("hub %s: %d library designs registered", self.config.hub_id, count)
        self._http = make_server(
            self.config.http_host,
            self.config.http_port,
            app=None,  # type: ignore[arg-type]
            threaded=True,
        )
        port = self._http.server_port
        self.public_url = self.config.public_url or f"http://{self.config.http_host}:{port}"
        self.dispatcher = Dispatcher(
            self.store,
            self.bus,
            self.designs,
            self.artifacts,
            self.public_url,
            lease_s=self.config.lease_s,
            offer_timeout_s=self.config.offer_timeout_s,
        )
        self.service = HubService(
            self.store,
            self.designs,
            self.dispatcher.cancel_job,
            max_attempts=self.config.max_attempts,
            control_task=self.dispatcher.control_task,
        )
        self._http.app = create_app(
            self.service,
            self.artifacts,
            self.config.api_token,
            settings=WebSettings.from_hub_config(self.config, self.public_url),
            dispatcher=self.dispatcher,
        )
        threading.Thread(target=self._http.serve_forever, name="hub-http", daemon=True).start()
        self.dispatcher.start()
        for sub in topics.hub_subscriptions():
            self.bus.subscribe(sub.filter, self.dispatcher.on_message, qos=sub.qos)
        self.bus.start()
        self.bus.publish_status(
            topics.hub_status(),
            msg.HubStatus(
                hub_id=self.config.hub_id, state=msg.HubState.ONLINE, version=__version__
            ),
        )
        self._scheduler.add_job(
            self.dispatcher.tick,
            "interval",
            seconds=self.config.sweep_interval_s,
            id="sweep-and-offer",
            max_instances=1,
            coalesce=True,
        )
        self._scheduler.start()
        log.info("hub %s serving %s", self.config.hub_id, self.public_url)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self.bus.publish_status(
            topics.hub_status(),
            msg.HubStatus(hub_id=self.config.hub_id, state=msg.HubState.GONE, version=__version__),
        )
        self.bus.stop()
        if self.dispatcher:
            self.dispatcher.stop()
        if self._http:
            self._http.shutdown()
        self.store.close()


def run_hub(config: HubConfig) -> None:
    """Run a hub until SIGINT or SIGTERM."""
    hub = Hub(config)
    hub.start()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"fabnet hub {config.hub_id} at {hub.public_url} (Ctrl-C stops)", flush=True)
    stopping.wait()
    hub.stop()
