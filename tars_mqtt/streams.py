"""``messages()`` streams of the asyncio twin.

A stream is a handler of the sync client (its public ``subscribe``) that queues messages
for one reader on an event loop; it knows nothing of the twin that made it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

from .client import MQTTClient
from .config import QueuePolicy
from .dispatch import Subscription
from .envelope import Message
from .handoff import call_soon, resolve

__all__ = ["Messages"]


class Messages:
    """A bounded stream of one filter's messages, for one reader; see ``messages()``."""

    _loop: asyncio.AbstractEventLoop

    def __init__(self, client: MQTTClient, topic_filter: str, qos: int, maxsize: int,
                 policy: QueuePolicy, *, on_close: Callable[[Messages], None] | None = None
                 ) -> None:
        self.filter, self._client, self._qos = topic_filter, client, qos
        self._on_close = on_close
        self._maxsize, self._policy = maxsize, policy
        self._items: deque[Message] = deque()
        self._lock = threading.Condition()  # "block": workers wait here for room
        self._wakeup: asyncio.Future[None] | None = None  # the reader waits here for items
        self._sub: Subscription | None = None
        self._closed = False

    async def __aenter__(self) -> Messages:
        self._loop = asyncio.get_running_loop()
        self._sub = await asyncio.to_thread(self._client.subscribe, self.filter,
                                            self._offer, self._qos)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe and end iteration (after what is queued); on the loop. Idempotent."""
        with self._lock:
            was_closed, self._closed = self._closed, True
            self._lock.notify_all()
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            resolve(wakeup, None)
        if self._sub is not None and not was_closed:
            self._client.unsubscribe(self._sub)
        if self._on_close is not None:
            self._on_close(self)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self if self._sub is not None or self._closed else self._owned()

    async def __anext__(self) -> Message:
        while True:
            with self._lock:
                if self._items:
                    self._lock.notify()
                    return self._items.popleft()
                if self._closed:
                    raise StopAsyncIteration
                self._wakeup = wakeup = self._loop.create_future()
            await wakeup

    async def _owned(self) -> AsyncIterator[Message]:
        await self.__aenter__()  # plain `async for`: subscribe now, unsubscribe at the end
        try:
            async for message in self:
                yield message
        finally:
            self.close()

    def _offer(self, message: Message) -> None:  # on a worker thread
        with self._lock:
            while (self._policy == "block" and len(self._items) >= self._maxsize
                   and not self._closed):
                self._lock.wait()
            if self._closed:
                return
            if len(self._items) >= self._maxsize:
                self._client.note_dropped()
                if self._policy == "drop_newest":
                    return
                self._items.popleft()
            self._items.append(message)
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            call_soon(self._loop, resolve, wakeup, None)
