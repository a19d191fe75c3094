"""Which handlers a message goes to: the client's table of broker subscriptions.

One route per filter holding every handler on it. Routing runs on paho's network thread,
so it reads a copy-on-write tuple and never blocks.

MQTT 5 subscription identifiers are only needed where filters overlap (the broker then
sends one copy per matching subscription), and paho parses them with its slow
``Properties`` (6-8 µs a message): so a route carries an id only while it overlaps another
route, and every other message is routed by filter.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import zip_longest

from .acks import SubAck
from .envelope import Inbound
from .mailboxes import Subscription
from .topics import matches

__all__ = ["Route", "RoutingTable", "Send", "filters_overlap"]

log = logging.getLogger("tars_mqtt")


def filters_overlap(a: str, b: str) -> bool:
    """Could one topic match both filters? (``+`` one level, ``#`` the rest, even none.)

    A filter starting with a wildcard never matches a ``$`` topic (MQTT 4.7.2), which is the
    only kind of topic a filter starting with ``$`` matches.
    """
    if a == b:
        return True
    if (a[:1] in ("+", "#") and b[:1] == "$") or (b[:1] in ("+", "#") and a[:1] == "$"):
        return False
    for x, y in zip_longest(a.split("/"), b.split("/")):
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != y and x != "+" and y != "+":
            return False
    return True


Send = Callable[["Route", bool], None]  # (route, again): again = the broker has the filter


def _no_send(route: Route, again: bool) -> None:
    pass


@dataclass(eq=False)
class Route:
    """One broker subscription (one filter) and its handlers.

    ``sub_id`` is its MQTT 5 subscription id, None while it overlaps no other route.
    ``internal`` is the client's own handler (heartbeat echo, request replies), run on the
    network thread; user handlers on the same filter still get the message.
    """

    filter: str
    sub_id: int | None = None
    qos: int = 0
    subs: tuple[Subscription, ...] = ()
    internal: Callable[[Inbound], None] | None = None
    acked: threading.Event = field(default_factory=threading.Event)
    refused: int | None = None

    def settle(self, result: SubAck) -> None:  # via the client's AckBook
        self.refused = result.refused
        if self.refused is not None:
            log.error("broker refused subscription %r (reason 0x%02x)", self.filter,
                      self.refused)
        self.acked.set()


class RoutingTable:
    """Filters → routes, v5 subscription ids → routes, and the routing of one message.

    Every SUBSCRIBE goes out through ``send`` under the table's lock, so the broker sees
    subscription ids change in the table's order: an existing route gets its id before a
    new route that overlaps it is subscribed (never two copies without an id to tell them
    apart). ``ids=False`` (MQTT 3.1.1) never assigns ids.
    """

    def __init__(self, send: Send = _no_send, *, ids: bool = True) -> None:
        self._send, self._use_ids = send, ids
        self._lock = threading.Lock()
        self._filters: dict[str, Route] = {}
        self._by_id: dict[int, Route] = {}  # current and earlier ids of live routes
        self._retired: set[int] = set()  # ids of removed routes: their late copies are dropped
        self._ids = itertools.count(1)
        self.routes: tuple[Route, ...] = ()  # copy-on-write view for the network thread

    def get(self, topic_filter: str) -> Route | None:
        return self._filters.get(topic_filter)

    def add(self, sub: Subscription) -> tuple[Route, bool]:
        """Add a handler; True when it was (re)sent to the broker, for a new filter or QoS."""
        with self._lock:
            route = self._filters.get(sub.filter)
            send = route is None or sub.qos > route.qos
            if route is None:
                route = self._new(sub.filter)
            route.qos = max(route.qos, sub.qos)
            route.subs = (*route.subs, sub)
            if send:
                self._send(route, False)
        return route, send

    def add_internal(self, topic: str, handler: Callable[[Inbound], None]) -> tuple[Route, bool]:
        """Route ``topic`` to the client itself; True when this made it new (and sent it)."""
        with self._lock:
            route = self._filters.get(topic) or self._new(topic)
            fresh = route.internal is None
            route.internal, route.qos = handler, max(route.qos, 1)
            if fresh:
                self._send(route, False)
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
            self.routes = tuple(self._filters.values())
            for i in [i for i, r in self._by_id.items() if r is route]:
                del self._by_id[i]
                self._retired.add(i)
            for other in self.routes:  # ids no longer needed: resubscribe without
                if other.sub_id is not None and not self._overlapping(other):
                    other.sub_id = None
                    self._send(other, True)
        return topic_filter

    def replay(self) -> None:
        """Send every route again with its current id (on connect)."""
        with self._lock:
            for route in self.routes:
                self._send(route, False)

    def _overlapping(self, route: Route) -> list[Route]:
        return [r for r in self.routes
                if r is not route and filters_overlap(r.filter, route.filter)]

    def _new(self, topic_filter: str) -> Route:
        route = Route(topic_filter)
        others = self._overlapping(route) if self._use_ids else []
        for other in others:  # the broker must tell their copies from the new route's
            if other.sub_id is None:
                self._give_id(other)
                self._send(other, True)
        if others:
            self._give_id(route)
        self._filters[topic_filter] = route
        self.routes = tuple(self._filters.values())
        return route

    def _give_id(self, route: Route) -> None:
        route.sub_id = next(self._ids)
        self._by_id[route.sub_id] = route

    def route(self, inbound: Inbound, sub_ids: list[int] | None) -> list[Subscription] | None:
        """The user handlers for one message; internal routes are called right here.

        None when no route takes it: no filter of ours matches (a subscription removed
        while the message was on its way, say), or its ids are all of removed routes.
        """
        routes: list[Route] = []
        if sub_ids:
            by_id = self._by_id
            routes = [by_id[i] for i in sub_ids if i in by_id]
            if not routes and all(i in self._retired for i in sub_ids):
                return None  # a late copy for a removed route; the others come with their own
        if not routes:  # no id, or ids from an earlier process's persistent session
            routes = [r for r in self.routes if matches(r.filter, inbound.topic)]
            if not routes:
                return None
        subs: list[Subscription] = []
        for route in routes:
            if route.internal is not None:
                route.internal(inbound)
            subs.extend(route.subs)
        return subs
