"""Feeds: a subscription's deliveries taken in batches by a consumer of its own.

The asyncio twin runs handlers on an event loop, not on the workers: a worker waiting for
each coroutine cost a thread hop per message. A feed's consumer is woken once when
deliveries start waiting, takes them in batches (``Feed.take``) and settles each
``Taken``; until then it counts against the queue's bound like any waiting delivery, so
the queue's policy, the ack after handling and the counters stay the dispatcher's own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .envelope import Message

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .mailboxes import Delivery, Mailbox, Subscription

__all__ = ["Feed", "Taken"]


class Feed:
    """One subscription's deliveries, for a consumer that takes them itself.

    Made by ``MQTTClient.subscribe_feed``. Its ``wake()`` is called with the queue's lock
    held, on paho's thread, when deliveries start waiting after ``take`` found none: it
    must only schedule the consumer (``loop.call_soon_threadsafe``), never block or call
    the client. Take, settle every ``Taken`` exactly once and ``flush`` on the consumer's own
thread.
    """

    def __init__(self, dispatcher: Dispatcher, box: Mailbox) -> None:
        self.subscription: Subscription = box.sub
        self._dispatcher, self._box = dispatcher, box
        self._settled = 0  # settled since the last take: counted against the bound till then
        self._name = f"event loop ({box.sub.name} on {box.sub.filter!r})"  # for watchdogs

    def take(self, limit: int) -> list[Taken]:
        """Up to ``limit`` waiting deliveries, oldest first. ``[]`` when none wait (or the
        client is stopping), and then the next one to arrive calls ``wake`` again."""
        settled, self._settled = self._settled, 0
        batch = self._dispatcher.take(self._box, limit, settled)
        return [Taken(self, delivery) for delivery in batch]

    def flush(self) -> None:
        """Before idling without a ``take``: what was settled stops counting against the
        queue's bound (``take`` does this itself)."""
        if self._settled:
            settled, self._settled = self._settled, 0
            self._dispatcher.held_done(settled)

    def close(self) -> None:
        """The consumer is gone (after the unsubscribe): what waits is not handled, so it
        is counted as dropped and never acknowledged; later arrivals go to the workers."""
        self._dispatcher.close_feed(self._box)
        self.flush()


class Taken:
    """One delivery a consumer holds: ``message()``, then one of ``settle()``, ``drop()``
    or ``abandon()`` (later calls do nothing)."""

    __slots__ = ("_feed", "_delivery", "_open", "_running")

    def __init__(self, feed: Feed, delivery: Delivery) -> None:
        self._feed, self._delivery, self._open, self._running = feed, delivery, True, False

    def running(self) -> None:
        """Its handler starts now: ``liveness_problem`` watches it until it is settled."""
        self._running = True
        self._feed._dispatcher.busy(self._feed._name, time.monotonic())

    def message(self) -> Message | None:
        """The decoded message; None when there is nothing to handle (its subscription is
        gone, or a duplicate), and then it is settled already."""
        message = self._feed._dispatcher.open(self._delivery)
        if message is None:
            self._done()
        return message

    def settle(self, error: BaseException | None = None) -> None:
        """Handled; ``error`` is what the handler raised (logged, counted). The broker gets
        the ack (QoS 1/2) once every subscription the message went to is done with it."""
        if self._open:
            self._feed._dispatcher.close_delivery(self._delivery, error)
            self._done()

    def drop(self) -> None:
        """The consumer's own bound dropped it: counted in ``dropped``, acknowledged."""
        if self._open:
            self._feed._dispatcher.unhandled(self._delivery, ack=True)
            self._done()

    def abandon(self) -> None:
        """Not handled (the consumer stopped or gave up): counted in ``dropped``, never
        acknowledged, so the broker sends it again to a persistent session."""
        if self._open:
            self._feed._dispatcher.unhandled(self._delivery, ack=False)
            self._done()

    def _done(self) -> None:
        self._open = False
        self._feed._settled += 1
        if self._running:
            self._feed._dispatcher.busy(self._feed._name, None)
