"""The broker's side of the routing table: SUBSCRIBE, the SUBACK it waits for, replay.

:class:`~tars_mqtt.routing.RoutingTable` decides which handlers a message goes to and
when a filter must be (re)sent; the :class:`Subscriber` sends it while connected and
tells a caller whether the broker granted it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from .acks import AckBook, SubAck
from .envelope import Inbound
from .errors import SubscribeError
from .mailboxes import Subscription
from .routing import Route, RoutingTable

__all__ = ["Subscriber"]

log = logging.getLogger("tars_mqtt")
SUBACK_TIMEOUT = 10.0


class Link(Protocol):
    """What subscribing needs of the transport."""

    connected: bool

    def subscribe(self, topic_filter: str, qos: int, sub_id: int | None,
                  again: bool = False) -> int: ...

    def unsubscribe(self, topic_filter: str) -> None: ...

    def on_network_thread(self) -> bool: ...


class Subscriber:
    """Every subscription of one client, kept with the broker across reconnects."""

    def __init__(self, link: Link, *, ids: bool) -> None:
        self._link = link
        self.acks: AckBook[SubAck] = AckBook()
        self.table = RoutingTable(self._send, ids=ids)

    def add(self, sub: Subscription, timeout: float = SUBACK_TIMEOUT) -> None:
        """Route ``sub``; while connected, wait up to ``timeout`` for the SUBACK (0: not).

        Raises:
            SubscribeError: the broker refused the filter.
        """
        route, sent = self.table.add(sub)
        if sent:
            self._await(route, timeout)

    def listen(self, topic: str, handler: Callable[[Inbound], None]) -> None:
        """Route ``topic`` to the client itself; returns once the broker has it."""
        route, fresh = self.table.add_internal(topic, handler)
        if fresh:
            self._await(route, SUBACK_TIMEOUT)
        elif self._link.connected and not self._link.on_network_thread():
            route.acked.wait(SUBACK_TIMEOUT)  # another thread's SUBSCRIBE may be in flight

    def remove(self, target: Subscription | str) -> None:
        """One handler, or every handler on a filter; UNSUBSCRIBE once none is left."""
        topic_filter = self.table.remove(target)
        if topic_filter is not None and self._link.connected:
            self._link.unsubscribe(topic_filter)

    def replay(self) -> None:
        """On each connect: every route again (the broker may have forgotten them)."""
        self.table.replay()

    def wait_granted(self, deadline: float) -> None:
        """At start-up: every SUBACK of the subscriptions made before it, until ``deadline``.

        Raises:
            SubscribeError: the broker refused one of them.
        """
        for route in self.table.routes:
            route.acked.wait(max(0.0, deadline - time.monotonic()))
            _check(route)

    def _send(self, route: Route, again: bool) -> None:
        """The table's ``send`` (under its lock): SUBSCRIBE now if connected, else on connect."""
        if self._link.connected:
            route.acked.clear()
            mid = self._link.subscribe(route.filter, route.qos, route.sub_id, again)
            self.acks.bind(mid, route)

    def _await(self, route: Route, timeout: float) -> None:
        if timeout <= 0 or not self._link.connected or self._link.on_network_thread():
            return
        if not route.acked.wait(timeout):
            log.warning("no SUBACK for %r within %s s; it is replayed on the next connect",
                        route.filter, timeout)
        _check(route)


def _check(route: Route) -> None:
    if route.refused is not None:
        raise SubscribeError(f"broker refused subscription {route.filter!r}"
                             f" (reason 0x{route.refused:02x})")
