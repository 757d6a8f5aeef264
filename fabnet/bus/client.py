"""``BusClient``: the paho-mqtt 2 wrapper the hub and the agents talk through (MQTT v5, QoS 1).

Thread model: paho's loop thread (started by ``start``) runs every handler. A handler must
return quickly — the hub and the agent hand each message to their own worker — because while it
runs no other message is read and its PUBACK is not sent. ``publish`` may be called from any
thread, also while disconnected: QoS 1 messages wait in paho's bounded queue and go out after
the reconnect.

Manual acknowledgement (``BusClient(manual_ack=True)``, paho's ``Client(manual_ack=True)``): a
QoS 1 message handed to a ``subscribe_acked`` handler is PUBACKed only when ``ack(tag)`` is
called, so a process that dies before it made the message durable gets it again from the
broker on its next connect. Everything else (plain handlers, dropped messages) is acked by the
client itself as before. Such a client asks for a Receive Maximum of ``MANUAL_ACK_RECEIVE_MAX``
in its CONNECT: Mosquitto otherwise sends an MQTT v5 client at most ``max_inflight_messages``
(20) unacknowledged messages, and a hub that acks after its commit would never see a batch
bigger than that.

How paho itself is set up (MQTT v5, credentials, TLS, queue limits, ``TCP_NODELAY``) is in
``fabnet.bus.paho_setup``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fabnet.bus import tls as bus_tls
from fabnet.bus.delivery import AckHandler, BusCounters, Delivery, DeliveryTag, Handler
from fabnet.bus.drops import DropLog
from fabnet.bus.messages import DropReason, InvalidMessage, Message, decode_at, encode
from fabnet.bus.paho_setup import paho_client
from fabnet.bus.settings import BusSettings, check_settings
from fabnet.bus.subscriptions import Subscriptions
from fabnet.bus.topics import parse
from fabnet.errors import Conflict

__all__ = [
    "AckHandler",
    "BusClient",
    "BusCounters",
    "BusSettings",
    "Delivery",
    "DeliveryTag",
    "check_settings",
]

log = logging.getLogger(__name__)

# Unacknowledged QoS 1 deliveries a manually acking client lets the broker have in flight to it:
# above the hub's batch (200 events per drain), so the next batch gathers while one commits.
MANUAL_ACK_RECEIVE_MAX = 1000
paho_log = logging.getLogger(f"{__name__}.paho")


class BusClient:
    """One broker connection with persistent session, Last Will, retained status and handlers.

    Typical use::

        bus = BusClient(settings, will=(topics.agent_status(a), AgentStatus(state=OFFLINE, ...)))
        bus.subscribe(topics.agent_commands(a), on_command)   # before start(): no message missed
        bus.start()
        bus.publish_status(topics.agent_status(a), AgentStatus(state=ONLINE, ...))
        bus.publish(topics.machine_events(a, m), TaskStarted(...))
        bus.stop(send_will=True)
    """

    def __init__(
        self,
        settings: BusSettings,
        *,
        will: tuple[str, Message] | None = None,
        manual_ack: bool = False,
    ) -> None:
        self.settings = check_settings(settings)
        self._will = will
        self._manual_ack = manual_ack
        self._lock = threading.Lock()  # retained statuses
        self._count_lock = threading.Lock()  # counters and pending deliveries
        self._subs = Subscriptions()
        self._session = 0  # connects so far; the connection a DeliveryTag belongs to
        self._statuses: dict[str, Message] = {}
        self._pending: list[Delivery] = []
        self._connected = threading.Event()
        self._ever_connected = False
        self._started = False
        self._stopping = False
        self._last_error: str | None = None
        self._n: dict[str, int] = dict.fromkeys(
            ("received", "handled", "published", "handler_errors", "refused", "connects"), 0
        )
        self._drops = DropLog(log)  # one line per dropped message, rate-limited
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = paho_client(self.settings, self._manual_ack)
        client.on_log = self._on_log
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    # -- public API -------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Call ``handler(topic, message)`` on paho's thread for each valid message matching
        ``topic_filter`` (``$share/group/...`` allowed). Kept across reconnects."""
        self._add_subscription(topic_filter, handler, qos, False)

    def subscribe_acked(self, topic_filter: str, handler: AckHandler, qos: int = 1) -> None:
        """Like ``subscribe``, but ``handler(topic, message, tag)`` owns the acknowledgement: on a
        ``manual_ack`` client the broker gets the PUBACK only when ``ack(tag)`` is called
        (without ``manual_ack`` the client acks as usual and ``ack`` does nothing)."""
        self._add_subscription(topic_filter, handler, qos, True)

    def _add_subscription(
        self, topic_filter: str, handler: Handler | AckHandler, qos: int, acked: bool
    ) -> None:
        self._subs.add(topic_filter, handler, qos, acked)
        if self._connected.is_set():
            self._client.subscribe(topic_filter, options=SubscribeOptions(qos=qos))

    def ack(self, tag: DeliveryTag) -> None:
        """Acknowledge a message given to a ``subscribe_acked`` handler (any thread). Nothing
        is sent for QoS 0, without ``manual_ack``, or for a tag of an earlier connection (the
        broker re-delivers that message, and its new copy is acked instead)."""
        if not self._manual_ack or tag.qos == 0 or tag.session != self._session:
            return
        self._client.ack(tag.mid, tag.qos)

    def publish(self, topic: str, msg: Message, *, qos: int = 1, retain: bool = False) -> Delivery:
        """Send ``msg``; safe while disconnected (QoS 1 is queued, QoS 0 is dropped).

        Raises InvalidInput if ``msg`` is not valid, Conflict if the queue is full."""
        info = self._client.publish(topic, encode(msg), qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self._count("refused")
            raise Conflict(
                f"bus queue full ({self.settings.max_queued} messages waiting for the broker); "
                f"{msg.TYPE} to {topic} not sent"
            )
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
            # paho has queued it for the reconnect but leaves NO_CONN on the handle, which
            # would make wait_for_publish raise; the handle completes on the PUBACK.
            info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        delivery = Delivery(info)
        with self._count_lock:
            self._n["published"] += 1
            if qos > 0:
                self._pending = [d for d in self._pending if not d.done]
                self._pending.append(delivery)
        return delivery

    def publish_status(self, topic: str, msg: Message) -> Delivery:
        """Publish retained state (QoS 1) and remember it: after every reconnect it is published
        again with a fresh id and time, so the broker's copy survives a broker restart."""
        with self._lock:
            self._statuses[topic] = msg
            return self.publish(topic, msg, qos=1, retain=True)

    def start(self) -> None:
        """Connect in the background (clean start off, session expiry) and keep reconnecting
        with backoff until ``stop``. Raises Conflict if already started."""
        if self._started:
            raise Conflict(f"bus client {self.settings.client_id} is already started")
        self._started = True
        self._stopping = False
        self._refresh_will()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        if self._manual_ack:  # unacked deliveries the broker may have in flight to us
            props.ReceiveMaximum = MANUAL_ACK_RECEIVE_MAX
        s = self.settings
        self._client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until connected (at most ``timeout_s`` seconds); True if connected."""
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connects(self) -> int:
        """Successful connects so far: a change means the connection was lost meanwhile."""
        return self._session

    @property
    def manual_ack(self) -> bool:
        return self._manual_ack

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt was refused or lost, if it was."""
        return self._last_error

    def flush(self, timeout_s: float) -> bool:
        """Wait until every QoS 1 message published so far is acknowledged; True if all were."""
        deadline = time.monotonic() + timeout_s
        with self._count_lock:
            pending = list(self._pending)
        return all(d.wait(max(0.0, deadline - time.monotonic())) for d in pending)

    def stop(self, *, send_will: bool = False, flush_timeout_s: float = 5.0) -> None:
        """Flush (if connected), disconnect and stop the loop thread. With ``send_will`` the
        broker publishes our Last Will as if we had vanished (MQTT v5 reason 0x04); the session
        is kept either way, so commands sent meanwhile wait for the next start."""
        if not self._started:
            return
        self._stopping = True
        if self.connected:
            self.flush(flush_timeout_s)
        reason = None
        if send_will:
            reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        self._client.disconnect(reasoncode=reason)
        self._client.loop_stop()
        self._connected.clear()
        self._started = self._stopping = False

    def counters(self) -> BusCounters:
        """A consistent snapshot of the counters."""
        with self._count_lock:
            return BusCounters(dropped=dict(self._drops.counts()), **self._n)

    def __enter__(self) -> BusClient:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- paho callbacks (loop thread) ---------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._count_lock:
            self._n[name] += 1

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        # paho logs "Client is not connected" as an error when stopped while offline: noise.
        if level == mqtt.MQTT_LOG_ERR and not (self._stopping and "not connected" in text):
            paho_log.warning("%s: %s", self.settings.client_id, text)
        else:
            paho_log.debug("%s: %s", self.settings.client_id, text)

    def _refresh_will(self) -> None:
        # A new id per connection: two Last Wills with one id would look like one to a hub
        # that de-duplicates by id. Its ts is when the connection was set up, not when it fired.
        if self._will is not None:
            topic, msg = self._will
            self._client.will_set(topic, encode(msg.restamped()), qos=1, retain=True)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        rc: ReasonCode,
        props: Any,
    ) -> None:
        if rc.is_failure:
            self._last_error = f"broker refused the connection: {rc}"
            log.warning("%s: %s", self.settings.client_id, self._last_error)
            return
        first = not self._ever_connected
        self._ever_connected = True
        self._session += 1
        self._count("connects")
        log.info(
            "%s connected to %s:%d (session present: %s)",
            self.settings.client_id,
            self.settings.host,
            self.settings.port,
            flags.session_present,
        )
        subs = self._subs.to_renew(first, flags.session_present)
        if subs:
            client.subscribe(subs)
        with self._lock:
            for topic, msg in self._statuses.items():
                fresh = msg.restamped()
                self._statuses[topic] = fresh
                client.publish(topic, encode(fresh), qos=1, retain=True)
        self._connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the connect, without the
        # exception: take it from there, so a TLS failure says what to fix.
        exc = sys.exc_info()[1]
        s = self.settings
        error = bus_tls.explain(exc, s.host, s.ca_file) if exc else "connection failed"
        if error != self._last_error:
            log.warning("%s: %s; retrying", s.client_id, error)
        self._last_error = error

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and rc.value != 0:
            self._last_error = f"connection lost: {rc}"
            log.warning("%s: %s; reconnecting", self.settings.client_id, self._last_error)
        if self._started:
            self._refresh_will()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        if rc.is_failure:
            self._count("refused")
            log.warning("%s: broker refused message %d: %s", self.settings.client_id, mid, rc)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any
    ) -> None:
        for rc in rcs:
            if rc.is_failure:
                self._count("refused")
                log.warning("%s: broker refused a subscription: %s", self.settings.client_id, rc)

    def _drop(self, reason: DropReason, topic: str, detail: str) -> None:
        self._drops.drop(reason.value, topic, detail)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._count("received")
        tag = DeliveryTag(message.mid, message.qos, self._session)
        if not self._deliver(message, tag):
            self.ack(tag)  # dropped, plain handler, or a handler that failed: done with it

    def _deliver(self, message: mqtt.MQTTMessage, tag: DeliveryTag) -> bool:
        """Hand ``message`` to its handler; True if an acking handler took it over."""
        try:
            topic_name = message.topic
            where = parse(topic_name)
            msg = decode_at(where, bytes(message.payload))
        except UnicodeDecodeError:
            self._drop(DropReason.BAD_TOPIC, "<undecodable>", "topic is not UTF-8")
            return False
        except InvalidMessage as exc:
            self._drop(exc.reason, topic_name, str(exc))
            return False
        found = self._subs.handler_for(topic_name)
        if found is None:
            self._drop(DropReason.UNHANDLED, topic_name, "no handler for this topic")
            return False
        handler, acked = found
        try:
            if acked:
                handler(where, msg, tag)  # type: ignore[call-arg]
            else:
                handler(where, msg)  # type: ignore[call-arg]
        except Exception:  # top of paho's loop thread: a handler bug must not end the loop
            # acked even from an acking handler: a message that breaks it would come back on
            # every connect and hold a slot of the broker's in-flight window meanwhile
            self._count("handler_errors")
            log.exception("handler for %s failed on %s %s", topic_name, msg.TYPE, msg.id)
            return False
        self._count("handled")
        return acked
