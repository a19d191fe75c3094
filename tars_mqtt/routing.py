"""Which handlers a message goes to: the client's table of broker subscriptions.

One route per filter (one MQTT 5 subscription id) holding every handler on it. Routing
runs on paho's network thread, so it reads a copy-on-write tuple and never blocks.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .dispatch import Inbound, Subscription
from .topics import matches

__all__ = ["Route", "RoutingTable"]

log = logging.getLogger("tars_mqtt")


@dataclass(eq=False)
class Route:
    """One broker subscription (one filter, one v5 subscription id) and its handlers.

    ``internal`` is the client's own handler (heartbeat echo, request replies), run on the
    network thread; user handlers on the same filter still get the message.
    """

    filter: str
    sub_id: int
    qos: int = 0
    subs: tuple[Subscription, ...] = ()
    internal: Callable[[Inbound], None] | None = None
    acked: threading.Event = field(default_factory=threading.Event)
    refused: int | None = None

    def settle(self, result: Any) -> None:  # SUBACK codes, via AckBook
        codes = result if isinstance(result, list) else []
        bad = [c for c in codes if c >= 0x80]
        self.refused = bad[0] if bad else None
        if bad:
            log.error("broker refused subscription %r (reason 0x%02x)", self.filter, bad[0])
        self.acked.set()


class RoutingTable:
    """Filters → routes, v5 subscription ids → routes, and the routing of one message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._filters: dict[str, Route] = {}
        self._by_id: dict[int, Route] = {}
        self._ids = itertools.count(1)
        self.routes: tuple[Route, ...] = ()  # copy-on-write view for the network thread

    def get(self, topic_filter: str) -> Route | None:
        return self._filters.get(topic_filter)

    def add(self, sub: Subscription) -> tuple[Route, bool]:
        """Add a handler; True when the broker must be (re)told, for a new filter or QoS."""
        with self._lock:
            route = self._filters.get(sub.filter)
            send = route is None or sub.qos > route.qos
            if route is None:
                route = self._new(sub.filter)
            route.qos = max(route.qos, sub.qos)
            route.subs = (*route.subs, sub)
        return route, send

    def add_internal(self, topic: str, handler: Callable[[Inbound], None]) -> tuple[Route, bool]:
        """Route ``topic`` to the client itself; True when this made it new."""
        with self._lock:
            route = self._filters.get(topic) or self._new(topic)
            fresh = route.internal is None
            route.internal, route.qos = handler, max(route.qos, 1)
        return route, fresh

    def remove(self, target: Subscription | str) -> str | None:
        """Remove one handler or all on a filter; the filter to unsubscribe once it is empty."""
        topic_filter = target if isinstance(target, str) else target.filter
        with self._lock:
            route = self._filters.get(topic_filter)
            if route is None:
                return None
            for sub in route.subs if isinstance(target, str) else (target,):
                sub.active = False
            route.subs = tuple(s for s in route.subs if s.active)
            if route.subs or route.internal is not None:
                return None
            del self._filters[topic_filter]
            del self._by_id[route.sub_id]
            self.routes = tuple(self._filters.values())
        return topic_filter

    def _new(self, topic_filter: str) -> Route:
        route = Route(topic_filter, next(self._ids))
        self._filters[topic_filter] = route
        self._by_id[route.sub_id] = route
        self.routes = tuple(self._filters.values())
        return route

    def route(self, inbound: Inbound, sub_ids: list[int] | None) -> list[Subscription]:
        """The user handlers for one message; internal routes are called right here."""
        by_id = self._by_id
        routes = [by_id[i] for i in sub_ids if i in by_id] if sub_ids else []
        if not routes:  # MQTT 3.1.1, or ids from an earlier process's persistent session
            routes = [r for r in self.routes if matches(r.filter, inbound.topic)]
        subs: list[Subscription] = []
        for route in routes:
            if route.internal is not None:
                route.internal(inbound)
            subs.extend(route.subs)
        return subs
