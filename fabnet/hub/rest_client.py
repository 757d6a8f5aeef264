"""A small client of a hub's REST API for the requester's command line (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from fabnet.errors import Conflict, DeviceError, FabnetError, InvalidInput, NotFound

TIMEOUT_S = 30.0


class HubClient:
    """Calls ``{hub}/api/v1``; errors come back as fabnet's own (400 → InvalidInput, …)."""

    def __init__(self, hub_url: str, token: str) -> None:
        self._base = hub_url.rstrip("/") + "/api/v1"
        self._token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self._base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeviceError(f"cannot reach hub at {self._base}: {exc}") from None


def _error(exc: urllib.error.HTTPError) -> FabnetError:
    try:
        message = json.loads(exc.read()).get("message", exc.reason)
    except (ValueError, AttributeError):
        message = str(exc.reason)
    kinds: dict[int, type[FabnetError]] = {400: InvalidInput, 404: NotFound, 409: Conflict}
    return kinds.get(exc.code, DeviceError)(f"hub answered {exc.code}: {message}")
