"""``MQTTClient``: the threaded client every TARS service uses, and the glue of its parts.

paho's network thread only routes and enqueues (``transport``, ``routing``); workers run
handlers (``dispatch``); the timer thread sends health and heartbeats and watches the link
(``vitals``). Publish order and the offline queue are ``publishing``; subscriptions kept
across reconnects ``subscribing``; request/reply ``requests``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, overload

from . import runner
from .config import MQTTConfig
from .dedupe import Deduplicator
from .dispatch import Dispatcher
from .envelope import Inbound, Message, encode_payload
from .errors import ConnectError, MQTTError
from .feeds import Feed
from .health import HEALTH_TYPE, health_data
from .mailboxes import Handler, Routed, Subscription
from .publishing import Envelopes, Outbox, PublishHandle
from .requests import ReplyHandle, Requester
from .state import ClientState
from .stats import ClientStats, Counters
from .subscribing import SUBACK_TIMEOUT, Subscriber
from .timing import Backoff
from .topics import keepalive_topic, reply_topic, validate_filter, validate_qos
from .transport import Transport
from .vitals import Vitals

__all__ = ["MQTTClient"]

log = logging.getLogger("tars_mqtt")
Payload = bytes | str | dict[str, Any] | list[Any] | None


class MQTTClient:
    """Connect, subscribe with handlers, publish; see docs/api.md."""

    def __init__(self, config: MQTTConfig, *, backoff: Backoff | None = None) -> None:
        self.config = config
        cid = config.client_id
        self._counters = Counters()
        self._dispatcher = Dispatcher(
            workers=config.workers, queue_size=config.queue_size, policy=config.queue_policy,
            counters=self._counters, window=config.receive_window,
            dedupe=Deduplicator(config.dedupe_ttl, config.dedupe_max_entries),
        )
        self._lock = threading.Lock()  # the state
        self._state = ClientState.NEW
        self._stopped = threading.Event()
        self._envelopes = Envelopes(config.source)
        self._transport = Transport(
            config, will=None, backoff=backoff, on_connected=self._on_connected,
            on_disconnected=self._on_disconnected, on_message=self._on_message,
            on_batch=self._on_batch, budget=self._dispatcher.read_budget,
            on_ack=lambda mid, ack: self._outbox.acks.settle(mid, ack),
            on_suback=lambda mid, ack: self._subs.acks.settle(mid, ack), counters=self._counters,
        )
        self._dispatcher.on_room = self._transport.wake
        self._subs = Subscriber(self._transport, ids=config.protocol == "5")
        self._routing = self._subs.table
        self._routed: list[Routed] = []  # of the read under way, on the network thread
        self._outbox = Outbox(self._transport, self._counters, name=cid,
                              offline_limit=config.offline_queue)
        self._vitals = Vitals(config, link=self._transport, outbox=self._outbox,
                              envelopes=self._envelopes, stats=self.stats)
        self._transport.set_will(self._vitals.will)
        self._requests = Requester(own_topic=reply_topic(cid), listen=self._subs.listen,
                                   outbox=self._outbox, envelopes=self._envelopes,
                                   counters=self._counters)
        if config.enable_heartbeat:
            self._routing.add_internal(keepalive_topic(cid), lambda inbound: None)

    @classmethod
    def from_env(cls, prefix: str = "MQTT_", *, client_id: str | None = None,
                 defaults: Mapping[str, Any] | None = None) -> MQTTClient:
        """A client configured by ``MQTT_*`` variables over ``defaults``; see ``MQTTConfig``."""
        return cls(MQTTConfig.from_env(prefix, client_id=client_id, defaults=defaults))

    # Lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> MQTTClient:
        """Connect, wait for CONNACK and the first SUBACKs, then start workers and timers.

        Raises:
            ConnectError: refused, bad credentials, unreachable, or no answer in ``timeout``.
            SubscribeError: the broker refused one of the subscriptions made before start.
            MQTTError: the client was started before.
        """
        with self._lock:
            if self._state != ClientState.NEW:
                raise MQTTError(f"client {self.config.client_id!r} is already {self._state}")
            self._state = ClientState.STARTING
        deadline = time.monotonic() + timeout
        cfg = self.config
        try:
            self._transport.start()
            if not self._transport.first_result.wait(timeout):
                raise ConnectError(f"no answer from broker {cfg.host}:{cfg.port} within"
                                   f" {timeout} s", reason="timeout")
            if self._transport.first_error is not None:
                raise self._transport.first_error
            self._subs.wait_granted(deadline)
        except BaseException:
            self._transport.stop()
            with self._lock:
                self._state = ClientState.NEW
            raise
        self._dispatcher.start()
        self._vitals.start()
        # 'ready' goes out before start() returns, so a service's own first health
        # (an 'error' found at boot) is never overwritten by it.
        self._vitals.flushed.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._state = ClientState.RUNNING
        log.info("client %s connected to %s:%s", cfg.client_id, cfg.host, cfg.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Drain handlers, publish ``shutdown`` health, disconnect, join threads. Idempotent."""
        with self._lock:
            previous, self._state = self._state, ClientState.STOPPED
        self._outbox.refuse()
        if previous in (ClientState.STOPPED, ClientState.NEW):
            self._stopped.set()
            return
        deadline = time.monotonic() + timeout
        if not self._dispatcher.close(timeout):
            log.warning("stop: handlers did not finish within %s s", timeout)
        self._vitals.close(deadline)  # the goodbye, behind the offline backlog
        self._transport.stop()
        self._outbox.fail_all()
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
        return self.start() if self._state == ClientState.NEW else self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Subscriptions -------------------------------------------------------------------
    @overload
    def subscribe(self, topic_filter: str, handler: None = None, qos: int = 0, *,
                  raw: bool = False, timeout: float = SUBACK_TIMEOUT
                  ) -> Callable[[Handler], Handler]: ...
    @overload
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 0, *,
                  raw: bool = False, timeout: float = SUBACK_TIMEOUT) -> Subscription: ...

    def subscribe(self, topic_filter: str, handler: Handler | None = None, qos: int = 0, *,
                  raw: bool = False, timeout: float = SUBACK_TIMEOUT
                  ) -> Subscription | Callable[[Handler], Handler]:
        """Call ``handler(message)`` on a worker for every message matching ``topic_filter``.

        Without ``handler`` it is a decorator. ``raw=True`` marks a subscription to
        non-envelope payloads, so they are not counted as decode errors. While connected it
        waits up to ``timeout`` for the broker's SUBACK; ``timeout=0`` returns at once (from
        an event loop, say), and a refusal is then only logged.

        Raises:
            ValueError: a malformed filter or QoS.
            SubscribeError: the broker refused the subscription.
        """
        validate_filter(topic_filter)
        validate_qos(qos)
        if handler is None:
            def decorate(func: Handler) -> Handler:
                self.subscribe(topic_filter, func, qos, raw=raw, timeout=timeout)
                return func
            return decorate
        sub = Subscription(topic_filter, handler, qos, raw)
        self._subs.add(sub, timeout)
        return sub

    def subscribe_feed(self, topic_filter: str, handler: Handler, wake: Callable[[], None],
                       qos: int = 0, *, raw: bool = False, timeout: float = SUBACK_TIMEOUT
                       ) -> Feed:
        """Subscribe for a consumer that takes the deliveries in batches itself (an event
        loop: the asyncio twin), instead of the workers calling ``handler``.

        ``wake()`` is called on paho's thread when deliveries start waiting; the consumer
        then takes them with ``Feed.take`` and settles each (see ``tars_mqtt.feeds``). The
        queue's bound and policy, the ack after handling and the counters are as for
        ``subscribe``; ``handler`` is what the consumer runs, its name is the logs'.

        Raises:
            ValueError, SubscribeError: as ``subscribe``.
        """
        validate_filter(topic_filter)
        validate_qos(qos)
        sub = Subscription(topic_filter, handler, qos, raw)
        feed = self._dispatcher.feed(sub, wake)  # before the route: no worker ever gets it
        try:
            self._subs.add(sub, timeout)
        except BaseException:
            self._subs.remove(sub)
            feed.close()
            raise
        return feed

    def unsubscribe(self, target: Subscription | str) -> None:
        """Remove one subscription, or every handler on a filter."""
        self._subs.remove(target)
        self._dispatcher.forget_inactive()

    # Publishing ----------------------------------------------------------------------
    def publish(self, topic: str, payload: Payload, qos: int = 0,
                retain: bool = False) -> PublishHandle:
        """Send a raw payload (bytes as given, str as UTF-8, dict/list as JSON).

        Raises:
            ValueError: a malformed topic or QoS, text that is not UTF-8, unsendable JSON.
            PublishError: offline and the offline queue is full, or the client is stopped.
        """
        return self._outbox.publish(topic, encode_payload(payload), qos, retain)

    def publish_event(self, topic: str, event_type: str, data: Any = None, qos: int = 1,
                      retain: bool = False, correlate: str | None = None, *,
                      reply_to: str | None = None) -> PublishHandle:
        """Send ``data`` (dict or dataclass) in an envelope of type ``event_type``.

        Raises:
            ValueError: a malformed topic, ``reply_to`` or QoS, or data strict JSON cannot
                carry (NaN, infinities, integers too large for a float, invalid text),
                naming the field.
            PublishError: offline and the offline queue is full, or the client is stopped.
        """
        envelope = self._envelopes.make(event_type, data, correlate=correlate,
                                        reply_to=reply_to)
        return self._outbox.publish(topic, envelope.encode(), qos, retain,
                                    correlation=correlate, response_topic=reply_to)

    def publish_health(self, ok: bool, event: str, error: str | None = None) -> PublishHandle:
        """Publish retained health: ``ready``, ``reconnected``, ``shutdown``, ``error``..."""
        return self.publish_event(self._vitals.topic, HEALTH_TYPE,
                                  health_data(ok, event, error), qos=1, retain=True)

    # Request / reply -------------------------------------------------------------------
    def send_request(self, topic: str, event_type: str, data: Any = None, qos: int = 1, *,
                     reply_topic: str | None = None) -> ReplyHandle:
        """Publish a request; the handle of its reply, to ``wait()`` on (or await, in aio).

        Replies come to this client's own ``system/reply/{client_id}``, or to
        ``reply_topic`` for a pair with a named reply topic (``llm/request`` →
        ``llm/response``); either way ``reply()`` on the other side answers there. Returns
        once the reply topic is subscribed and the request handed over.

        Raises:
            ValueError, PublishError: as ``publish_event``.
        """
        return self._requests.send_request(topic, event_type, data, qos,
                                           reply_topic=reply_topic)

    def request(self, topic: str, event_type: str, data: Any = None,
                timeout: float = 5.0, qos: int = 1, *, reply_topic: str | None = None
                ) -> Message:
        """``send_request(...)`` and block for the reply whose ``correlate`` matches.

        Raises:
            RequestTimeout: no reply within ``timeout``.
        """
        handle = self.send_request(topic, event_type, data, qos, reply_topic=reply_topic)
        try:
            return handle.wait(timeout)
        finally:
            handle.cancel()

    def reply(self, request: Message, event_type: str, data: Any = None,
              qos: int = 1) -> PublishHandle:
        """Answer ``request`` on its ``reply_to`` topic, correlated to it.

        Raises:
            ValueError: no ``reply_to``, or one that is no topic (the sender wrote it).
            PublishError: as ``publish_event``.
        """
        if not request.reply_to:
            raise ValueError(f"message on {request.topic!r} has no reply_to: it is no request")
        correlate = request.envelope.id if request.envelope else request.correlate
        return self.publish_event(request.reply_to, event_type, data, qos=qos,
                                  correlate=correlate)

    # paho callbacks (network thread): record and hand on, never block --------------
    def _on_connected(self, session_present: bool) -> None:
        self._subs.replay()  # SUBSCRIBEs first: the offline backlog the timer flushes next
        if self._vitals.connected():  # may be for this client's own subscriptions
            self._counters.add("reconnects")

    def _on_disconnected(self, reason: str) -> None:
        self._vitals.disconnected()
        log.warning("client %s lost the broker: %s", self.config.client_id, reason)

    def _on_message(self, inbound: Inbound, sub_ids: list[int] | None) -> None:
        subs = self._routing.route(inbound, sub_ids)
        if subs is None:  # no subscription of ours matches (any more): counted, not lost
            self._counters.add("unrouted")
        elif subs:
            self._routed.append((inbound, subs))

    def _on_batch(self) -> None:
        """Every message of one read is routed: one hand-off to the workers for all."""
        # Not acks: paho "acks" QoS 0 once written to a socket, which a half-open link
        # accepts for ever. The watchdog trusts inbound messages only.
        self._vitals.traffic()
        routed, self._routed = self._routed, []
        self._dispatcher.submit_many(routed)

    # Introspection -------------------------------------------------------------------
    @property
    def state(self) -> ClientState:
        """Where the client is: ``NEW``, ``STARTING``, ``RUNNING`` or ``STOPPED``."""
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
                                       offline_queued=len(self._outbox),
                                       broker=self._transport.broker_url)

    def note_dropped(self, count: int = 1) -> None:
        """Count messages a handler's own bounded buffer dropped, in ``stats().dropped``."""
        self._counters.add("dropped", count)

    def liveness_problem(self, handler_limit: float = 30.0) -> str | None:
        """Why this client is wedged, or None; for service watchdogs.

        A broker that is merely down is not a problem (the client reconnects by itself);
        a dead thread, a refused login or a handler busy past ``handler_limit`` is.
        """
        if self._state != ClientState.RUNNING:
            return f"client is {self._state}"
        if self._transport.fatal_error is not None:
            return str(self._transport.fatal_error)
        if not self._transport.thread_alive():
            return "paho's network thread has died: the client neither reads nor reconnects"
        if not self._vitals.alive:
            return "the client's timer thread has died"
        return self._dispatcher.liveness_problem(handler_limit)
