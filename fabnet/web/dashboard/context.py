"""What the dashboard's views share: the hub service, artifacts, bounded store reads, the shared
network figures, and the thumbnail and layer caches."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app

from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.service import HubService
from fabnet.store.listings import Listings
from fabnet.store.overview import OverviewReads
from fabnet.web.layer_preview import LayerModels
from fabnet.web.thumbnails import Thumbnails

if TYPE_CHECKING:
    from fabnet.web.dashboard.network import NetworkFigures, SharedValue

EXTENSION = "fabnet_dashboard"


def default_cache_dir() -> Path:
    """Where thumbnails are cached when the hub names no folder: the system's temp folder."""
    return Path(tempfile.gettempdir()) / "fabnet-dashboard-cache"


@dataclass
class Dashboard:
    """The dashboard's state in one app; caches are thread-safe."""

    service: HubService
    artifacts: ArtifactStore
    thumbnails: Thumbnails
    listings: Listings
    reads: OverviewReads
    network: SharedValue[NetworkFigures]
    layers: LayerModels = field(default_factory=LayerModels)
    analyses: dict[str, Any] = field(default_factory=dict)  # G-code path -> (analysis, checks)
    lock: threading.Lock = field(default_factory=threading.Lock)


def dashboard() -> Dashboard:
    """The running app's ``Dashboard`` (inside a request)."""
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, Dashboard)
    return found
