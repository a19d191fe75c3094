"""Connecting, the network thread and paho's codes; paho itself is imported in paho_api only.

paho's client is driven by the client's own network thread (:mod:`.netloop`) through a
leaner wire (:mod:`.wire`): each read is parsed at once and its messages handed on as one
batch, and whatever threads queued goes out in one write. Every callback runs inside one
guard: an exception raised there would end the network thread for good (no reconnect,
ever), so it is logged, counted as ``callback_errors``, and the thread carries on.
Reconnecting waits our jittered :class:`~tars_mqtt.timing.Backoff`, then paho's own
``reconnect()``.

QoS 1/2 deliveries are acknowledged by hand (paho's ``manual_ack``) once every consumer
of the message is done with it, and only on the connection it came on: after a reconnect
the broker sends the unacknowledged ones again itself.

With several brokers (``config.brokers``) each attempt goes to one of them, set just
before paho connects: the same broker while the link holds, the next one after a lost
link or a failed attempt. Untried brokers are tried at once; a round that failed on all
of them backs off like one failed attempt on a single broker.
"""

from __future__ import annotations

import logging
import random
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..acks import DeliveryAcks, PubAck, SubAck
from ..config import MQTTConfig
from ..errors import ConnectError
from ..failover import BrokerRing
from ..stats import Counters, suppressed
from ..timing import Backoff
from .codes import GIVE_UP, connect_error, describe_reason, no_mqtt5
from .inbox import Inbox, OnMessage
from .netloop import NetworkLoop
from .paho_api import MQTTErrorCode, PacketTypes, Properties, ReasonCode, SubscribeOptions, paho
from .probe import lacks_mqtt5, point_at, tls_context
from .wire import WireClient

__all__ = ["Transport", "connect_error", "describe_reason"]

log = logging.getLogger("tars_mqtt")

_DONE = PubAck()
_STOP_TIMEOUT = 5.0  # seconds stop() gives the network thread to send DISCONNECT

OnConnected = Callable[[bool], None]          # session_present
OnDisconnected = Callable[[str], None]        # reason text
OnBatch = Callable[[], None]                  # the messages of one read were all routed
OnAck = Callable[[int, PubAck], None]
OnSubAck = Callable[[int, SubAck], None]


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


class Transport:
    """One paho client: connect, keep connected, and translate paho's callbacks."""

    def __init__(self, config: MQTTConfig, *, will: tuple[str, bytes] | None = None,
                 on_connected: OnConnected, on_disconnected: OnDisconnected,
                 on_message: OnMessage, on_ack: OnAck, on_suback: OnSubAck,
                 on_batch: OnBatch | None = None, budget: Callable[[], int | None] | None = None,
                 counters: Counters | None = None,
                 backoff: Backoff | None = None, rng: random.Random | None = None) -> None:
        self.config = config
        self.v5 = config.protocol == "5"
        self._counters = counters or Counters()
        self._backoff = backoff or Backoff(config.reconnect_min_delay, config.reconnect_max_delay)
        self._rng = rng or random.Random()
        self._attempt = 0
        self._on_connected, self._on_disconnected = on_connected, on_disconnected
        self._on_ack, self._on_suback = on_ack, on_suback
        self.next_delay = 0.0  # seconds before the next connection attempt
        self.first_result = threading.Event()
        self.first_error: ConnectError | None = None
        self.fatal_error: ConnectError | None = None
        self.connected = False
        self._stopping = False
        self._kicked = False  # the watchdog, not the broker, ended the last attempt
        self._answered = False  # the last attempt got a CONNACK (a refusal, say)
        self._ring = BrokerRing(config.brokers)
        self.client = self._build()
        self._acks = DeliveryAcks(self.client.ack)
        inbox = Inbox(self._acks, v5=self.v5, ack=self.client.ack, on_message=on_message,
                      on_batch=self._guard(on_batch or (lambda: None)))
        self.client.on_message = self._guard(inbox.from_message)
        self.client.on_publish_packet = self._guard(inbox.from_packet)
        self._loop = NetworkLoop(self.client, name=f"tars-mqtt-net-{config.client_id}",
                                 delay=lambda: self.next_delay, after_read=inbox.after_read,
                                 budget=budget or (lambda: None))
        self.set_will(will)
        if len(config.brokers) > 1:
            self._contexts = {b.url: tls_context(b) for b in config.brokers if b.tls}
            self.client.on_pre_connect = self._guard(self._handle_pre_connect)
        self._set_next_delay()

    @property
    def broker(self) -> MQTTConfig:
        """The broker of the current attempt or link, one of ``config.brokers``."""
        return self._ring.current

    @property
    def broker_url(self) -> str:
        """The URL (no secret) of the broker the client is connected to; "" when it is not."""
        return self.broker.url if self.connected else ""

    def _build(self) -> WireClient:
        client = WireClient.for_config(self.config)
        guard = self._guard
        client.on_connect = guard(self._handle_connect)
        client.on_connect_fail = guard(self._handle_connect_fail)
        client.on_disconnect = guard(self._handle_disconnect)
        client.on_publish = guard(self._handle_publish)
        client.on_subscribe = guard(self._handle_subscribe)
        client.on_unknown_pubrel = guard(lambda mid: self._acks.unknown_pubrel(mid))
        client.on_acked = guard(lambda mid: self._on_ack(mid, _DONE))
        return client

    def set_will(self, will: tuple[str, bytes] | None) -> None:
        """The retained QoS 1 message the broker sends when the link dies; before start()."""
        if will is None:
            self.client.will_clear()
            return
        props = None
        if self.v5:
            props = _properties(PacketTypes.WILLMESSAGE)
            props.WillDelayInterval = 0  # the broker's default was seen ~5 s late
        self.client.will_set(will[0], will[1], qos=1, retain=True, properties=props)

    def _guard(self, callback: Callable[..., None]) -> Callable[..., None]:
        """The one wrapper of every paho callback: nothing raised in it reaches paho."""
        name = getattr(callback, "__name__", repr(callback))

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:
                quiet = self._counters.add_logged("callback_errors")
                if quiet is not None:
                    log.exception("client %s: %s failed on paho's network thread; it carries"
                                  " on%s", self.config.client_id, name, suppressed(quiet))

        guarded.__name__ = name
        return guarded

    # Lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        self._stopping = False
        self.first_result.clear()
        self.first_error = None
        self._ring.reset()
        props = None
        if self.v5:
            props = _properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = cfg.session_expiry
            props.ReceiveMaximum = cfg.receive_window
        self.client.connect_async(
            cfg.host, cfg.port, cfg.keepalive,
            clean_start=cfg.starts_clean if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self._loop.start()

    def stop(self) -> None:
        """Disconnect cleanly (no will) and join the network thread."""
        self._stopping = True
        self.client.disconnect()
        self._loop.stop(_STOP_TIMEOUT)
        self.connected = False
        self._acks.disconnected()

    def thread_alive(self) -> bool:
        """The network thread is running (it is reconnecting, when the broker is down)."""
        return self._loop.alive()

    def on_network_thread(self) -> bool:
        return threading.current_thread() is self._loop.thread

    def wake(self) -> None:
        """Have the network thread look again (the reads it holds may go on); any thread."""
        self._loop.wake()

    def kick(self) -> None:
        """Drop a link that looks alive but carries nothing; paho then reconnects."""
        self._kicked = True
        self.client.shut_down()

    # Traffic -------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool,
                correlation: str | None = None, response_topic: str | None = None
                ) -> tuple[int, bool]:
        """Hand one message to paho; returns ``(mid, accepted)``.

        ``accepted`` is False only when paho dropped it (QoS 0 while the link is down);
        QoS 1/2 messages are kept by paho and re-sent after a reconnect.
        """
        if qos == 0 and not (self.v5 and (correlation or response_topic)):
            mid = self.client.publish_qos0(topic, payload, retain)
            return mid, mid != 0
        props = None
        if self.v5 and (correlation or response_topic):
            props = _properties(PacketTypes.PUBLISH)
            if correlation:
                props.CorrelationData = correlation.encode("utf-8")
            if response_topic:
                props.ResponseTopic = response_topic
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return info.mid, False
        return info.mid, not (info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos == 0)

    def subscribe(self, topic_filter: str, qos: int, sub_id: int | None,
                  again: bool = False) -> int:
        """SUBSCRIBE; ``sub_id`` None sends no id (v5). ``again``: the broker already has
        this filter (an id added or dropped), so v5 asks it not to resend retained messages.
        """
        props = options = None
        if self.v5:
            if sub_id is not None:
                props = _properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = sub_id
            options = SubscribeOptions(qos=qos, retainHandling=1 if again else 0)
        # paho reads ``options`` only under MQTT 5 and ``qos`` only under 3.1.1 (there it
        # silently subscribed at QoS 0 when given options), and refuses both at once.
        _, mid = self.client.subscribe(topic_filter, qos=0 if self.v5 else qos,
                                       options=options, properties=props)
        return mid or 0

    def unsubscribe(self, topic_filter: str) -> None:
        self.client.unsubscribe(topic_filter)

    # paho callbacks (network thread) -----------------------------------------------
    def _set_next_delay(self) -> None:
        delay = self._backoff.delay(self._attempt, self._rng)
        self._attempt += 1
        self.next_delay = delay

    def _handle_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        """Point paho at the broker of this attempt (paho's socket is closed here)."""
        cfg = self._ring.next_attempt()
        point_at(client, cfg, self._contexts.get(cfg.url))

    def _first_round(self, error: ConnectError, final: bool = False) -> None:
        """Tell ``start()`` once every broker has failed once, or at once when ``final``."""
        if not self.first_result.is_set():
            self.first_error = self._ring.start_failed(error, final)
            if self.first_error is not None:
                self.first_result.set()

    def _give_up(self, error: ConnectError) -> None:
        """A refusal that retrying cannot fix: report it and stop reconnecting."""
        self.fatal_error = error
        self._first_round(error, final=True)
        log.error("not retrying: %s (client %s)", error, self.config.client_id)
        self.client.disconnect()

    def _after_failure(self) -> None:
        """The next broker at once while some are untried since the last link, else back off."""
        if self._ring.failed():
            self.next_delay = 0.0
        else:
            self._set_next_delay()

    def _handle_connect(self, client: paho.Client, userdata: Any, flags: Any,
                        reason: ReasonCode, properties: Any) -> None:
        cfg = self.broker
        self._answered = True
        if reason.is_failure:
            self._counters.add("failed_connects")
            error = connect_error(reason, cfg.host, cfg.port, self.config.client_id)
            log.error("%s", error)
            if error.reason in GIVE_UP:
                self._give_up(error)
            else:
                self._first_round(error)
            return
        self._ring.connected()
        self._attempt = 0
        self._set_next_delay()
        self.client.no_delay()
        self.connected = True
        self._acks.connected()
        try:
            self._on_connected(bool(flags.session_present))
        finally:
            self.first_result.set()

    def _handle_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        cfg = self.broker
        self._counters.add("failed_connects")
        if not self.first_result.is_set():
            # paho calls this inside its ``except OSError``: the exception says why.
            exc = sys.exc_info()[1]
            if isinstance(exc, ssl.SSLError):  # reachable, but the TLS handshake failed
                self._first_round(ConnectError(
                    f"TLS handshake with broker {cfg.host}:{cfg.port} failed: {exc}",
                    reason="tls"))
            else:
                detail = f" ({exc})" if exc is not None else ""
                self._first_round(ConnectError(
                    f"broker {cfg.host}:{cfg.port} is unreachable{detail}", reason="unreachable"))
        self._after_failure()

    def _handle_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                           reason: ReasonCode, properties: Any) -> None:
        was_connected, self.connected = self.connected, False
        kicked, self._kicked = self._kicked, False
        answered, self._answered = self._answered, False
        self._acks.disconnected()
        if not was_connected:  # an attempt that died before CONNACK: back off further
            if self.v5 and not (self._stopping or kicked or answered) and lacks_mqtt5(self.broker):
                cfg = self.broker
                self._give_up(no_mqtt5(cfg.host, cfg.port, "it closed the connection on an"
                                        " MQTT 5 CONNECT"))
                return
            self._after_failure()
        elif not self._stopping:  # the wait for attempt 0 was set at CONNACK
            self._ring.lost()
            self._on_disconnected(describe_reason(reason))

    def _handle_publish(self, client: paho.Client, userdata: Any, mid: int,
                        reason: ReasonCode, properties: Any) -> None:
        self._on_ack(mid, PubAck(describe_reason(reason) if reason.is_failure else None))

    def _handle_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                          reasons: list[ReasonCode], properties: Any) -> None:
        self._on_suback(mid, SubAck(tuple(r.value for r in reasons)))
