"""How a client tells the robot it is alive: it sends health and heartbeats, and drops a
half-open link.

The payloads are the pure functions of :mod:`~tars_mqtt.health`; :class:`Vitals` sends
them on the client's one timer thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from .config import MQTTConfig
from .errors import PublishError
from .health import HEALTH_TYPE, HEARTBEAT_TYPE, health_data, heartbeat_data
from .publishing import Envelopes, Outbox, Outgoing, PublishHandle
from .stats import ClientStats
from .ticker import Ticker
from .topics import health_topic, keepalive_topic

__all__ = ["Vitals"]

log = logging.getLogger("tars_mqtt")


class Link(Protocol):
    """What the watchdog needs of the transport."""

    connected: bool

    @property
    def broker_url(self) -> str: ...

    def kick(self) -> None: ...


class Vitals:
    """Health, heartbeat and the half-open link watchdog of one client.

    Runs on the client's one timer thread: after each connect it hands ``ready`` or
    ``reconnected`` health to paho ahead of the offline backlog; every
    ``heartbeat_interval`` it sends a heartbeat (which comes back through the client's own
    subscription) and drops a link that has carried nothing for three intervals.
    """

    def __init__(self, config: MQTTConfig, *, link: Link, outbox: Outbox,
                 envelopes: Envelopes, stats: Callable[[], ClientStats]) -> None:
        self.config = config
        cid = config.client_id
        self.topic = health_topic(cid)
        self._beat_topic = keepalive_topic(cid)
        self._link, self._outbox, self._envelopes, self._stats = link, outbox, envelopes, stats
        self._connects = 0
        self._started_at = self._last_inbound = self._disconnected_at = time.monotonic()
        self._closing = False
        self.flushed = threading.Event()  # the first health and the backlog handed to paho
        self._ticker = Ticker(f"tars-mqtt-timer-{cid}", config.heartbeat_interval,
                              tick=self._tick, on_poke=self._after_connect)

    @property
    def will(self) -> tuple[str, bytes] | None:
        """``offline`` health, retained, for the broker to send when the link dies."""
        if not self.config.enable_health:
            return None
        return self.topic, self._item(False, "offline").payload

    @property
    def alive(self) -> bool:
        return self._ticker.alive

    def start(self) -> None:
        self._ticker.start()

    # paho's network thread: record only ---------------------------------------------
    def connected(self) -> bool:
        """A connect happened; True when it was a reconnect."""
        self._connects += 1
        self._last_inbound = time.monotonic()
        self._ticker.poke()
        return self._connects > 1

    def disconnected(self) -> None:
        self._disconnected_at = time.monotonic()

    def traffic(self) -> None:
        """Something came in: proof that the link is alive (an outgoing ack is not)."""
        self._last_inbound = time.monotonic()

    # Stopping ---------------------------------------------------------------------------
    def close(self, deadline: float) -> None:
        """Stop the timer; hand ``shutdown`` health to paho behind the backlog and wait for
        its ack until ``deadline`` (monotonic), 2 s at most."""
        self._closing = True
        self._ticker.stop(max(0.0, deadline - time.monotonic()))
        if not (self.config.enable_health and self._link.connected):
            return
        shutdown = self._item(False, "shutdown")
        self._outbox.flush(behind=shutdown)
        try:
            shutdown.handle.wait(min(2.0, max(0.1, deadline - time.monotonic())))
        except PublishError as exc:
            log.warning("stop: shutdown health not acknowledged: %s", exc)

    # The timer thread -----------------------------------------------------------------
    def _after_connect(self) -> None:
        health = None
        if self.config.enable_health and not self._closing:
            health = self._item(True, "ready" if self._connects <= 1 else "reconnected")
        self._outbox.flush(ahead=health)
        self.flushed.set()

    def _item(self, ok: bool, event: str) -> Outgoing:
        several = len(self.config.brokers) > 1  # then health says which one it is on
        data = health_data(ok, event, broker=self._link.broker_url if several else None)
        payload = self._envelopes.make(HEALTH_TYPE, data, sequenced=False).encode()
        return Outgoing(self.topic, payload, 1, True, PublishHandle(self.topic, 1))

    def _tick(self) -> None:
        if not self.config.enable_heartbeat:
            return
        now = time.monotonic()
        if self._link.connected:  # now or never: a stale heartbeat says nothing
            beat = self._envelopes.make(HEARTBEAT_TYPE, heartbeat_data(now - self._started_at,
                                                                        self._stats()))
            topic = self._beat_topic
            self._outbox.send_now(Outgoing(topic, beat.encode(), 0, False,
                                           PublishHandle(topic, 0)))
        silent = now - max(self._last_inbound, self._disconnected_at)
        if silent > 3 * self.config.heartbeat_interval + 0.5:
            log.warning("no traffic from the broker for %.1f s: dropping the link", silent)
            self._last_inbound = now
            self._link.kick()
