"""``messages()`` streams of the asyncio twin, and the thread-to-loop hand-off helpers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .config import QueuePolicy
from .dispatch import Subscription
from .envelope import Message

if TYPE_CHECKING:
    from .aio import AsyncMQTTClient

__all__ = ["Messages", "call_soon", "resolve"]


class Messages:
    """A bounded stream of one filter's messages, for one reader; see ``messages()``."""

    _loop: asyncio.AbstractEventLoop

    def __init__(self, client: AsyncMQTTClient, topic_filter: str, qos: int, maxsize: int,
                 policy: QueuePolicy) -> None:
        self.filter, self._client, self._qos = topic_filter, client, qos
        self._maxsize, self._policy = maxsize, policy
        self._items: deque[Message] = deque()
        self._lock = threading.Condition()  # "block": workers wait here for room
        self._wakeup: asyncio.Future[None] | None = None  # the reader waits here for items
        self._sub: Subscription | None = None
        self._closed = False

    async def __aenter__(self) -> Messages:
        self._client._loop = self._loop = asyncio.get_running_loop()
        self._sub = await asyncio.to_thread(self._client.sync.subscribe, self.filter,
                                            self._offer, self._qos)
        self._client._streams.add(self)
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
            self._client.sync.unsubscribe(self._sub)
        self._client._streams.discard(self)

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
                self._client.sync._counters.add("dropped")
                if self._policy == "drop_newest":
                    return
                self._items.popleft()
            self._items.append(message)
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            call_soon(self._loop, resolve, wakeup, None)


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def call_soon(loop: asyncio.AbstractEventLoop, func: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(func, *args)
