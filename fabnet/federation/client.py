"""Calling a peer hub: a signed JSON POST over HTTP(S) whose answer must be signed by that
peer for this very request (stdlib only, like ``fabnet.hub.rest_client``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fabnet.errors import DeviceError
from fabnet.federation import signing as sg
from fabnet.federation.keys import HubKey, PublicKey
from fabnet.store.peers import Peer

TIMEOUT_S = 20.0
MAX_ANSWER_BYTES = 1 << 20


class PeerRefused(DeviceError):
    """The peer answered, but refused (its status and message) or its answer was not its."""


class PeerClient:
    """Signs requests as hub ``name`` with ``key``; ``clock`` gives the time signed."""

    def __init__(self, name: str, key: HubKey, max_skew_s: float,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self.name = name
        self._key = key
        self._skew_s = max_skew_s
        self._clock = clock

    def post(self, peer: Peer, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``peer.url + path``; its signed JSON answer. PeerRefused when
        the peer refuses or its answer is not signed by its key; DeviceError when it cannot
        be reached."""
        body = json.dumps(payload).encode()
        url = peer.url.rstrip("/") + path
        parts = urlsplit(url)
        nonce = sg.new_nonce()
        headers = sg.sign_request(self._key, self.name, "POST", parts.path, parts.query, body,
                                  int(self._clock().timestamp()), nonce)  # fmt: skip
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as answer:
                status, raw = answer.status, answer.read(MAX_ANSWER_BYTES)
                got = sg.lower_headers(answer.headers.items())
        except urllib.error.HTTPError as exc:
            raise PeerRefused(f"peer {peer.name} refused ({exc.code}): {_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeviceError(f"cannot reach peer {peer.name} at {url}: {exc}") from None
        try:
            sg.verify_response(PublicKey(peer.public_key), peer.name, status, got, raw, nonce,
                               self._clock().timestamp(), self._skew_s)  # fmt: skip
        except sg.SignatureRefused as exc:
            raise PeerRefused(f"answer from {peer.name} not trusted: {exc}") from None
        answer_body = json.loads(raw or b"null")
        if not isinstance(answer_body, dict):
            raise PeerRefused(f"peer {peer.name} answered {raw[:100]!r}, not a JSON object")
        return answer_body


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("message", exc.reason))
    except (ValueError, AttributeError):
        return str(exc.reason)
