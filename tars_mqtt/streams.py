"""``messages()`` streams of the asyncio twin.

A stream is a feed of the sync client's queue (its public ``subscribe_feed``) read by one
reader on an event loop; it knows nothing of the twin that made it. Deliveries come over
in batches, one loop wake-up for all that wait, and everything of a stream runs on its
loop. A QoS 1/2 message is acknowledged once the reader asks for the next one (it is
done with this one) or the stream closes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from .client import MQTTClient
from .config import QueuePolicy
from .envelope import Message
from .feeds import Feed, Taken
from .handoff import Courier, courier_for, resolve

__all__ = ["Messages"]

_TAKE = 64  # deliveries moved from the client's queue per take under the drop policies


class Messages:
    """A bounded stream of one filter's messages, for one reader; see ``messages()``."""

    _courier: Courier

    def __init__(self, client: MQTTClient, topic_filter: str, qos: int, maxsize: int,
                 policy: QueuePolicy, *, on_close: Callable[[Messages], None] | None = None
                 ) -> None:
        self.filter, self._client, self._qos = topic_filter, client, qos
        self._on_close = on_close
        self._maxsize, self._policy = maxsize, policy
        self._items: deque[Taken] = deque()
        self._reading: Taken | None = None  # handed to the reader, settled at its next ask
        self._held_back = False  # "block" left deliveries in the client's queue
        self._wakeup: asyncio.Future[None] | None = None  # the reader waits here for items
        self._feed: Feed | None = None
        self._closed = False

    async def __aenter__(self) -> Messages:
        self._courier = courier_for(asyncio.get_running_loop())

        def read(message: Message) -> None:  # names the subscription; the reader reads
            raise TypeError("a stream's messages are read with `async for`")

        read.__qualname__ = f"messages({self.filter!r})"
        self._feed = await asyncio.to_thread(self._client.subscribe_feed, self.filter, read,
                                             self._wake, self._qos)
        if self._closed:  # closed while subscribing
            self._release_feed()
        self._fill()  # what came before the feed was ours woke nobody
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe and end iteration; on the loop. Idempotent. What waits unread is
        not acknowledged (counted as dropped): a persistent session gets it again."""
        if self._closed:
            return
        self._closed = True
        if self._reading is not None:
            self._reading.settle()
        while self._items:
            self._items.popleft().abandon()
        self._release_feed()
        if self._wakeup is not None:
            resolve(self._wakeup, None)
        if self._on_close is not None:
            self._on_close(self)

    def _release_feed(self) -> None:
        if self._feed is not None:
            self._client.unsubscribe(self._feed.subscription)
            self._feed.close()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self if self._feed is not None or self._closed else self._owned()

    async def __anext__(self) -> Message:
        if self._reading is not None:
            self._reading.settle()  # the reader is back: done with the last one
            self._reading = None
        while True:
            if self._items:
                taken = self._items.popleft()
                if self._held_back:
                    self._fill()
                message = taken.message()
                if message is not None:
                    self._reading = taken
                    return message
                continue
            if self._closed:
                raise StopAsyncIteration
            if self._feed is not None:
                self._feed.flush()
            self._wakeup = self._courier.loop.create_future()
            await self._wakeup
            self._wakeup = None

    async def _owned(self) -> AsyncIterator[Message]:
        await self.__aenter__()  # plain `async for`: subscribe now, unsubscribe at the end
        try:
            async for message in self:
                yield message
        finally:
            self.close()

    def _wake(self) -> None:  # the feed's wake: on paho's thread, with the queue's lock held
        self._courier.send(self._fill)

    def _fill(self) -> None:
        """On the loop: move what waits into the stream, within ``maxsize`` and ``policy``."""
        feed, items = self._feed, self._items
        if feed is None or self._closed:
            return
        self._held_back = False
        while True:
            room = self._maxsize - len(items)
            if self._policy == "block" and room <= 0:
                self._held_back = True  # they wait in the client's queue, under its bound
                break
            batch = feed.take(room if self._policy == "block" else _TAKE)
            if not batch:
                break
            for taken in batch:
                if len(items) >= self._maxsize:
                    if self._policy == "drop_newest":
                        taken.drop()
                        continue
                    items.popleft().drop()
                items.append(taken)
        if items and self._wakeup is not None:
            resolve(self._wakeup, None)
