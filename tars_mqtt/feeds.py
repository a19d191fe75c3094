"""Feeds: a subscription's deliveries taken in batches by a consumer of its own.

The asyncio twin runs handlers on an event loop, not on the workers: a worker waiting for
each coroutine cost a thread hop per message. A feed's consumer is woken once when
deliveries start waiting, takes them in batches (``Feed.take``) and settles each
``Taken``; until then it counts against the queue's bound like any waiting delivery, so
the queue's policy, the ack after handling and the counters stay the dispatcher's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .envelope import Message

if TYPE_CHECKING:
    from .dispatch import Delivery, Dispatcher, Subscription, _Mailbox

__all__ = ["Feed", "Taken"]


class Feed:
    """One subscription's deliveries, for a consumer that takes them itself.

    Made by ``MQTTClient.subscribe_feed``. Its ``wake()`` is called with the queue's lock
    held, on paho's thread, when deliveries start waiting after ``take`` found none: it
    must only schedule the consumer (``loop.call_soon_threadsafe``), never block or call
    the client. Take on the consumer's own thread; settle every ``Taken`` exactly once.
    """

    def __init__(self, dispatcher: Dispatcher, box: _Mailbox) -> None:
        self.subscription: Subscription = box.sub
        self._dispatcher, self._box = dispatcher, box

    def take(self, limit: int) -> list[Taken]:
        """Up to ``limit`` waiting deliveries, oldest first. ``[]`` when none wait (or the
        client is stopping), and then the next one to arrive calls ``wake`` again."""
        dispatcher = self._dispatcher
        return [Taken(dispatcher, delivery) for delivery in dispatcher.take(self._box, limit)]

    def close(self) -> None:
        """The consumer is gone (after the unsubscribe): what waits is not handled, so it
        is counted as dropped and never acknowledged; later arrivals go to the workers."""
        self._dispatcher.close_feed(self._box)


class Taken:
    """One delivery a consumer holds: ``message()``, then one of ``settle()``, ``drop()``
    or ``abandon()`` (later calls do nothing)."""

    __slots__ = ("_dispatcher", "_delivery", "_open")

    def __init__(self, dispatcher: Dispatcher, delivery: Delivery) -> None:
        self._dispatcher, self._delivery, self._open = dispatcher, delivery, True

    def message(self) -> Message | None:
        """The decoded message; None when there is nothing to handle (its subscription is
        gone, or a duplicate), and then it is settled already."""
        message = self._dispatcher.open(self._delivery)
        if message is None:
            self._open = False
            self._dispatcher.held_done()
        return message

    def settle(self, error: BaseException | None = None) -> None:
        """Handled; ``error`` is what the handler raised (logged, counted). The broker gets
        the ack (QoS 1/2) once every subscription the message went to is done with it."""
        if self._open:
            self._open = False
            self._dispatcher.close_delivery(self._delivery, error)
            self._dispatcher.held_done()

    def drop(self) -> None:
        """The consumer's own bound dropped it: counted in ``dropped``, acknowledged."""
        if self._open:
            self._open = False
            self._dispatcher.unhandled(self._delivery, ack=True)

    def abandon(self) -> None:
        """Not handled (the consumer stopped or gave up): counted in ``dropped``, never
        acknowledged, so the broker sends it again to a persistent session."""
        if self._open:
            self._open = False
            self._dispatcher.unhandled(self._delivery, ack=False)
