"""``MQTTClient``: the threaded client every TARS service uses.

paho's network thread only routes and enqueues; the worker pool runs handlers; the
ticker thread publishes health and heartbeats, flushes the offline queue and watches
for a half-open link. The client owns session state: it replays every subscription and
republishes health on each connect.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, overload

from . import runner
from .config import MQTTConfig
from .dedupe import Deduplicator
from .dispatch import Dispatcher, Handler, Inbound, Subscription
from .envelope import Envelope, Message, encode_payload, to_data
from .errors import ConnectError, MQTTError, PublishError, SubscribeError
from .health import HEALTH_TYPE, HEARTBEAT_TYPE, health_data, heartbeat_data
from .publishing import AckBook, OfflineQueue, Outgoing, PublishHandle
from .requests import PendingRequests
from .routing import Route, RoutingTable
from .stats import ClientStats, Counters
from .ticker import Ticker
from .timing import Backoff
from .topics import (
    health_topic,
    keepalive_topic,
    reply_topic,
    validate_filter,
    validate_topic,
)
from .transport import Transport

__all__ = ["MQTTClient"]

log = logging.getLogger("tars_mqtt")
_SUBACK_TIMEOUT = 10.0


class MQTTClient:
    """Connect, subscribe with handlers, publish; see the contract, §3."""

    def __init__(self, config: MQTTConfig, *, backoff: Backoff | None = None) -> None:
        self.config = config
        cid = config.client_id
        self._counters = Counters()
        self._dispatcher = Dispatcher(
            workers=config.workers, queue_size=config.queue_size, policy=config.queue_policy,
            counters=self._counters,
            dedupe=Deduplicator(config.dedupe_ttl, config.dedupe_max_entries),
        )
        self._acks = AckBook()
        self._offline = OfflineQueue(config.offline_queue)
        self._requests = PendingRequests()
        self._lock = threading.RLock()  # state, and the order of publishes
        self._routing = RoutingTable(self._subscribe_now, ids=config.protocol == "5")
        self._seq = itertools.count(1)
        self._state = "new"
        self._connects = 0
        self._started_at = time.monotonic()
        self._last_inbound = time.monotonic()
        self._disconnected_at = time.monotonic()
        self._stopped = threading.Event()
        self._flushed = threading.Event()  # first health + offline backlog handed to paho
        self._health_topic = health_topic(cid)
        self._reply_topic = reply_topic(cid)
        will = None
        if config.enable_health:
            will = (self._health_topic, self._envelope(HEALTH_TYPE, health_data(False, "offline"),
                                                       sequenced=False).encode())
        self._transport = Transport(
            config, will=will, backoff=backoff, on_connected=self._on_connected,
            on_disconnected=self._on_disconnected, on_message=self._on_message,
            on_ack=self._on_ack, on_suback=self._on_ack,
        )
        self._ticker = Ticker(f"tars-mqtt-timer-{cid}", config.heartbeat_interval,
                              tick=self._tick, on_poke=self._after_connect)
        if config.enable_heartbeat:
            self._routing.add_internal(keepalive_topic(cid), lambda inbound: None)

    @classmethod
    def from_env(cls, prefix: str = "MQTT_", *, client_id: str | None = None) -> MQTTClient:
        return cls(MQTTConfig.from_env(prefix, client_id=client_id))

    # Lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> MQTTClient:
        """Connect, wait for CONNACK and the first SUBACKs, then start workers and timers.

        Raises:
            ConnectError: refused, bad credentials, unreachable, or no answer in ``timeout``.
            SubscribeError: the broker refused one of the subscriptions made before start.
        """
        with self._lock:
            if self._state != "new":
                raise MQTTError(f"client {self.config.client_id!r} is already {self._state}")
            self._state = "starting"
        deadline = time.monotonic() + timeout
        cfg = self.config
        try:
            self._transport.start()
            if not self._transport.first_result.wait(timeout):
                raise ConnectError(f"no answer from broker {cfg.host}:{cfg.port} within"
                                   f" {timeout} s", reason="timeout")
            if self._transport.first_error is not None:
                raise self._transport.first_error
            for entry in self._routing.routes:
                entry.acked.wait(max(0.0, deadline - time.monotonic()))
                if entry.refused is not None:
                    raise SubscribeError(f"broker refused subscription {entry.filter!r}"
                                         f" (reason 0x{entry.refused:02x})")
        except BaseException:
            self._transport.stop()
            with self._lock:
                self._state = "new"
            raise
        self._dispatcher.start()
        self._ticker.start()
        # 'ready' goes out before start() returns, so a service's own first health
        # (an 'error' found at boot) is never overwritten by it.
        self._flushed.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._state = "running"
        log.info("client %s connected to %s:%s", cfg.client_id, cfg.host, cfg.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Drain handlers, publish ``shutdown`` health, disconnect, join threads. Idempotent."""
        with self._lock:
            previous, self._state = self._state, "stopped"
        if previous in ("stopped", "new"):
            self._stopped.set()
            return
        deadline = time.monotonic() + timeout
        self._ticker.stop(timeout)
        if not self._dispatcher.close(max(0.0, deadline - time.monotonic())):
            log.warning("stop: handlers did not finish within %s s", timeout)
        if self.config.enable_health and self._transport.connected:
            shutdown = self._health_item(False, "shutdown")
            self._flush(behind=shutdown)  # the offline backlog goes out before the goodbye
            try:
                shutdown.handle.wait(min(2.0, max(0.1, deadline - time.monotonic())))
            except PublishError as exc:
                log.warning("stop: shutdown health not acknowledged: %s", exc)
        self._transport.stop()
        self._acks.fail_all("client stopped")
        for item in self._offline.take_all():
            item.handle.settle("client stopped before the message could be sent")
        self._stopped.set()
        log.info("client %s stopped", self.config.client_id)

    def run_forever(self) -> None:
        """Start (waiting for a broker that is down), serve until SIGINT/SIGTERM or
        ``stop()``, then stop cleanly.

        Raises:
            ConnectError: the broker refused the credentials, or TLS failed.
            SubscribeError: the broker refused a subscription made before the start.
        """
        runner.run(self, stop=self._stopped)

    def __enter__(self) -> MQTTClient:
        return self.start() if self._state == "new" else self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Subscriptions -------------------------------------------------------------------
    @overload
    def subscribe(self, topic_filter: str, handler: None = None, qos: int = 0, *,
                  raw: bool = False) -> Callable[[Handler], Handler]: ...
    @overload
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 0, *,
                  raw: bool = False, wait: bool = True) -> Subscription: ...

    def subscribe(self, topic_filter: str, handler: Handler | None = None, qos: int = 0, *,
                  raw: bool = False, wait: bool = True
                  ) -> Subscription | Callable[[Handler], Handler]:
        """Call ``handler(message)`` on a worker for every message matching ``topic_filter``.

        Without ``handler`` it is a decorator. ``raw=True`` marks a subscription to
        non-envelope payloads, so they are not counted as decode errors. ``wait=False``
        returns before the broker's SUBACK (a refusal is then only logged), as aio needs.

        Raises:
            ValueError: a malformed filter or QoS.
            SubscribeError: the broker refused the subscription.
        """
        validate_filter(topic_filter)
        _check_qos(qos)
        if handler is None:
            def decorate(func: Handler) -> Handler:
                self.subscribe(topic_filter, func, qos, raw=raw)
                return func
            return decorate
        sub = Subscription(topic_filter, handler, qos, raw)
        route, sent = self._routing.add(sub)
        if sent:
            self._await_suback(route, wait)
        return sub

    def unsubscribe(self, target: Subscription | str) -> None:
        """Remove one subscription, or every handler on a filter."""
        topic_filter = self._routing.remove(target)
        if topic_filter is not None and self._transport.connected:
            self._transport.unsubscribe(topic_filter)

    def _subscribe_now(self, entry: Route, again: bool) -> None:
        """Send one SUBSCRIBE (the routing table's ``send``, under its lock) if connected."""
        if self._transport.connected:  # else replayed by _on_connected
            entry.acked.clear()
            mid = self._transport.subscribe(entry.filter, entry.qos, entry.sub_id, again)
            self._acks.bind(mid, entry)

    def _await_suback(self, entry: Route, wait: bool = True) -> None:
        if not wait or not self._transport.connected or self._transport.on_network_thread():
            return
        if not entry.acked.wait(_SUBACK_TIMEOUT):
            log.warning("no SUBACK for %r within %s s; it is replayed on the next connect",
                        entry.filter, _SUBACK_TIMEOUT)
        if entry.refused is not None:
            raise SubscribeError(f"broker refused subscription {entry.filter!r}"
                                 f" (reason 0x{entry.refused:02x})")

    # Publishing ----------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes | str | dict[str, Any] | list[Any] | None,
                qos: int = 0, retain: bool = False) -> PublishHandle:
        """Send a raw payload (bytes as given, str as UTF-8, dict/list as JSON).

        Raises:
            ValueError: a malformed topic or QoS.
            PublishError: offline and the offline queue is full, or the client is stopped.
        """
        validate_topic(topic)
        _check_qos(qos)
        return self._send(Outgoing(topic, encode_payload(payload), qos, retain,
                                   PublishHandle(topic, qos)))

    def publish_event(self, topic: str, event_type: str, data: Any = None, qos: int = 1,
                      retain: bool = False, correlate: str | None = None, *,
                      reply_to: str | None = None) -> PublishHandle:
        """Send ``data`` (dict or dataclass) in an envelope of type ``event_type``."""
        validate_topic(topic)
        _check_qos(qos)
        envelope = self._envelope(event_type, data, correlate=correlate, reply_to=reply_to)
        return self._send(Outgoing(topic, envelope.encode(), qos, retain,
                                   PublishHandle(topic, qos), correlation=correlate,
                                   response_topic=reply_to))

    def publish_health(self, ok: bool, event: str, error: str | None = None) -> PublishHandle:
        """Publish retained health: ``ready``, ``reconnected``, ``shutdown``, ``error``..."""
        return self.publish_event(self._health_topic, HEALTH_TYPE, health_data(ok, event, error),
                                  qos=1, retain=True)

    def _envelope(self, event_type: str, data: Any, *, correlate: str | None = None,
                  reply_to: str | None = None, sequenced: bool = True,
                  envelope_id: str | None = None) -> Envelope:
        if not event_type:
            raise ValueError("event_type must not be empty")
        return Envelope(type=event_type, source=self.config.source, data=to_data(data),
                        id=envelope_id or uuid.uuid4().hex, correlate=correlate,
                        reply_to=reply_to, seq=next(self._seq) if sequenced else None)

    def _send(self, item: Outgoing) -> PublishHandle:
        with self._lock:
            if self._state == "stopped":
                raise PublishError(f"client {self.config.client_id!r} is stopped:"
                                   f" cannot publish to {item.topic!r}")
            if not (self._transport.connected and not self._offline and self._hand_over(item)):
                self._offline.push(item)
        return item.handle

    def _hand_over(self, item: Outgoing) -> bool:
        mid, accepted = self._transport.publish(item.topic, item.payload, item.qos, item.retain,
                                                item.correlation, item.response_topic)
        if accepted:
            item.handle.mid = mid
            self._acks.bind(mid, item.handle)
            self._counters.add("published")
        return accepted

    # Request / reply -------------------------------------------------------------------
    def request(self, topic: str, event_type: str, data: Any = None,
                timeout: float = 5.0, qos: int = 1, *, reply_topic: str | None = None
                ) -> Message:
        """Publish a request and block for the reply whose ``correlate`` matches.

        Replies come to this client's own ``system/reply/{client_id}``, or to
        ``reply_topic`` for a pair with a named reply topic (``llm/request`` →
        ``llm/response``); either way ``reply()`` on the other side answers there.

        Raises:
            RequestTimeout: no reply within ``timeout``.
        """
        request_id = uuid.uuid4().hex
        slot = self._requests.open(request_id)
        try:
            self._send_request(topic, event_type, data, qos, request_id, reply_topic)
            return self._requests.wait(slot, request_id, timeout, topic)
        finally:
            self._requests.cancel(request_id)

    def _send_request(self, topic: str, event_type: str, data: Any, qos: int,
                      request_id: str, reply_topic: str | None = None) -> None:
        """Publish request ``request_id`` once the reply topic is subscribed (also for aio)."""
        reply_topic = validate_topic(reply_topic) if reply_topic else self._reply_topic
        entry, fresh = self._routing.add_internal(reply_topic, self._on_reply)
        if fresh:
            self._await_suback(entry)
        elif self._transport.connected and not self._transport.on_network_thread():
            entry.acked.wait(_SUBACK_TIMEOUT)  # another thread's SUBSCRIBE may be in flight
        envelope = self._envelope(event_type, data, reply_to=reply_topic, envelope_id=request_id)
        self._send(Outgoing(topic, envelope.encode(), qos, False, PublishHandle(topic, qos),
                            correlation=request_id, response_topic=reply_topic))

    def reply(self, request: Message, event_type: str, data: Any = None,
              qos: int = 1) -> PublishHandle:
        """Answer ``request`` on its ``reply_to`` topic, correlated to it."""
        if not request.reply_to:
            raise ValueError(f"message on {request.topic!r} has no reply_to: it is no request")
        correlate = request.envelope.id if request.envelope else request.correlate
        return self.publish_event(request.reply_to, event_type, data, qos=qos,
                                  correlate=correlate)

    def _on_reply(self, inbound: Inbound) -> None:
        if not self._requests.resolve(inbound.message(self._counters)):
            self._counters.add("late_replies")
            log.debug("reply on %s matches no request in flight; dropped", inbound.topic)

    # paho callbacks (network thread): record and hand on, never block --------------
    def _on_connected(self, session_present: bool) -> None:
        self._connects += 1
        self._last_inbound = time.monotonic()
        if self._connects > 1:
            self._counters.add("reconnects")
        self._routing.replay()
        self._ticker.poke()

    def _on_disconnected(self, reason: str) -> None:
        self._disconnected_at = time.monotonic()
        log.warning("client %s lost the broker: %s", self.config.client_id, reason)

    def _on_message(self, inbound: Inbound, sub_ids: list[int] | None) -> None:
        self._last_inbound = time.monotonic()
        self._dispatcher.submit(inbound, self._routing.route(inbound, sub_ids))

    def _on_ack(self, mid: int, result: Any) -> None:
        # Not proof of a live link: paho "acks" QoS 0 once written to the socket, which a
        # half-open link accepts for ever. The watchdog trusts inbound messages only.
        self._acks.settle(mid, result)

    # Ticker thread -------------------------------------------------------------------
    def _after_connect(self) -> None:
        health = None
        if self.config.enable_health and self._state != "stopped":
            health = self._health_item(True, "ready" if self._connects <= 1 else "reconnected")
        self._flush(ahead=health)
        self._flushed.set()

    def _flush(self, ahead: Outgoing | None = None, behind: Outgoing | None = None) -> None:
        """Hand the offline backlog to paho in order, health ahead of or behind it.

        Health bypasses the ``offline_queue`` limit: a full backlog must never keep health,
        or the backlog itself, from going out after a reconnect.
        """
        with self._lock:
            items = [i for i in (ahead, *self._offline.take_all(), behind) if i is not None]
            for n, item in enumerate(items):
                if not (self._transport.connected and self._hand_over(item)):
                    self._offline.put_back(items[n:])
                    break

    def _health_item(self, ok: bool, event: str) -> Outgoing:
        several = len(self.config.brokers) > 1  # then health says which one it is on
        data = health_data(ok, event, broker=self._transport.broker_url if several else None)
        payload = self._envelope(HEALTH_TYPE, data, sequenced=False).encode()
        return Outgoing(self._health_topic, payload, 1, True, PublishHandle(self._health_topic, 1))

    def _tick(self) -> None:
        if not self.config.enable_heartbeat:
            return
        now = time.monotonic()
        if self._transport.connected:  # now or never: no stale heartbeat in the backlog
            topic = keepalive_topic(self.config.client_id)
            beat = self._envelope(HEARTBEAT_TYPE, heartbeat_data(now - self._started_at,
                                                                 self.stats()))
            with self._lock:
                self._hand_over(Outgoing(topic, beat.encode(), 0, False, PublishHandle(topic, 0)))
        silent = now - max(self._last_inbound, self._disconnected_at)
        if silent > 3 * self.config.heartbeat_interval + 0.5:
            log.warning("no traffic from the broker for %.1f s: dropping the link", silent)
            self._last_inbound = now
            self._transport.kick()

    # Introspection -------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``new``, ``starting``, ``running`` or ``stopped``."""
        return self._state

    @property
    def fatal_error(self) -> ConnectError | None:
        """Why the client gave up reconnecting (refused credentials), else None."""
        return self._transport.fatal_error

    @property
    def is_connected(self) -> bool:
        return self._transport.connected

    @property
    def paho(self) -> Any:
        """The underlying ``paho.mqtt.client.Client``, for what tars_mqtt does not wrap."""
        return self._transport.client

    def stats(self) -> ClientStats:
        return self._counters.snapshot(queue_depth=self._dispatcher.depth,
                                       offline_queued=len(self._offline),
                                       broker=self._transport.broker_url)

    def liveness_problem(self, handler_limit: float = 30.0) -> str | None:
        """Why this client is wedged, or None; for service watchdogs.

        A broker that is merely down is not a problem (the client reconnects by itself);
        a dead thread, a refused login or a handler busy past ``handler_limit`` is.
        """
        if self._state != "running":
            return f"client is {self._state}"
        if self._transport.fatal_error is not None:
            return str(self._transport.fatal_error)
        if not self._transport.thread_alive() or not self._ticker.alive:
            return "a client thread has died"
        dead = self._dispatcher.dead_workers()
        if dead:
            return f"worker threads died: {', '.join(dead)}"
        busy = self._dispatcher.longest_busy()
        if busy is not None and busy[1] > handler_limit:
            return f"{busy[0]} has been in one handler for {busy[1]:.1f} s"
        return None


def _check_qos(qos: int) -> None:
    if qos not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
