"""A paho-mqtt 2 client configured as fabnet's bus needs it, before ``BusClient`` wires its
callbacks: MQTT v5, the login, TLS for ``mqtts://``, reconnect back-off, bounded queues, and
``TCP_NODELAY`` on the socket.

``TCP_NODELAY``: with Nagle's algorithm a PUBLISH written right after a PUBACK waits for the
peer's delayed ACK (~40 ms), which caps one conversation at ~22 round trips/s.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import tls as bus_tls
from fabnet.bus.settings import BusSettings

log = logging.getLogger(__name__)


def paho_client(settings: BusSettings, manual_ack: bool) -> mqtt.Client:
    """A new paho client for ``settings`` (not connected; no message callbacks yet)."""
    s = settings
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=s.client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    client.username_pw_set(s.username, s.password)
    if s.tls:
        bus_tls.configure_client(client, s.ca_file)
    client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
    client.max_queued_messages_set(s.max_queued)
    client.max_inflight_messages_set(s.max_inflight)
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho's ``on_socket_open``: TCP_NODELAY before the CONNECT goes out (a TLS socket is a
    ``socket.socket`` too; a WebSocket wrapper is left alone)."""
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # e.g. a Unix socket: no Nagle to turn off
            log.debug("TCP_NODELAY not set: %s", exc)
