"""Hand-offs between the client's threads and an event loop.

A ``PublishHandle`` or ``ReplyHandle`` settles on paho's network thread, and a feed's
deliveries start waiting there; a :class:`Courier` carries those calls over to the loop
with one wake-up for all that arrive while the loop is busy (``call_soon_threadsafe``
writes to the loop's self-pipe every time, which under load cost more than the call).
A :class:`LoopHandler` runs one subscription's coroutine handler on the loop, a batch of
deliveries at a time. Nothing here touches a loop that has already closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from .envelope import Message
from .errors import PublishError
from .feeds import Feed
from .publishing import PublishHandle
from .requests import ReplyHandle

__all__ = ["AsyncHandler", "Courier", "LoopHandler", "acked", "call_soon", "cancel_when_sent",
           "courier_for", "replied", "resolve"]

log = logging.getLogger("tars_mqtt")
AsyncHandler = Callable[[Message], Coroutine[Any, Any, Any]]
# Deliveries a handler's task takes at a time; it lets the loop's other tasks run between
# batches, so a flood cannot starve them. Each still counts against the queue's bound.
_BATCH = 64
_couriers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Courier] = (
    weakref.WeakKeyDictionary())


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def call_soon(loop: asyncio.AbstractEventLoop, func: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(func, *args)


class Courier:
    """Runs calls made on any thread on one loop, in order, waking it once per burst."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._armed = False  # a _run is scheduled: what arrives meanwhile rides along

    def send(self, func: Callable[..., None], *args: Any) -> None:
        """Call ``func(*args)`` on the loop soon; from any thread, never blocking."""
        with self._lock:
            self._calls.append((func, args))
            if self._armed:
                return
            self._armed = True
        call_soon(self.loop, self._run)

    def _run(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
        for func, args in calls:
            try:
                func(*args)
            except Exception:  # one failed call must not strand the ones behind it
                log.exception("call handed to the event loop failed: %r", func)
        with self._lock:
            if not self._calls:
                self._armed = False
                return
        self.loop.call_soon(self._run)  # more came: after the loop's other callbacks


def courier_for(loop: asyncio.AbstractEventLoop) -> Courier:
    """The one courier of ``loop`` (made on first use; call it on the loop)."""
    courier = _couriers.get(loop)
    if courier is None:
        courier = _couriers[loop] = Courier(loop)
    return courier


class LoopHandler:
    """One subscription's coroutine handler, run on a loop one delivery at a time, in
    order, a batch per wake-up; a QoS 1/2 message is settled (acknowledged) only once its
    coroutine has returned. Messages wait until ``bind`` gives it a loop."""

    def __init__(self, handler: AsyncHandler) -> None:
        self.handler = handler
        self.feed: Feed | None = None  # set right after subscribing
        self._courier: Courier | None = None
        self._task: asyncio.Task[None] | None = None

    def bind(self, courier: Courier) -> None:
        """Run on ``courier``'s loop from now on (what waits already starts)."""
        self._courier = courier
        courier.send(self._start)

    def wake(self) -> None:
        """The feed's ``wake``: on paho's thread, with the queue's lock held."""
        courier = self._courier
        if courier is not None:
            courier.send(self._start)

    def _start(self) -> None:
        assert self._courier is not None
        if self.feed is None:  # subscribing has not returned yet
            self._courier.loop.call_soon(self._start)
        elif self._task is None:
            self._task = self._courier.loop.create_task(self._drain(self.feed))

    async def _drain(self, feed: Feed) -> None:
        handler = self.handler
        try:
            while batch := feed.take(_BATCH):
                for n, taken in enumerate(batch):
                    message = taken.message()
                    if message is None:
                        continue
                    taken.running()
                    try:
                        await handler(message)
                    except asyncio.CancelledError:  # stopping: never acknowledged
                        for rest in batch[n:]:
                            rest.abandon()
                        raise
                    except Exception as exc:
                        taken.settle(exc)
                    else:
                        taken.settle()
                await asyncio.sleep(0)
        finally:
            feed.flush()
            self._task = None

    async def cancel(self) -> None:
        """Cancel the running handler (its message is not acknowledged) and wait for it."""
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def acked(handle: PublishHandle, timeout: float | None) -> PublishHandle:
    """Await the broker's ack (QoS 1/2).

    Raises:
        PublishError: none within ``timeout``, or the broker refused the message.
    """
    if handle.qos == 0:
        return handle
    courier = courier_for(asyncio.get_running_loop())
    done: asyncio.Future[None] = courier.loop.create_future()
    handle.add_done_callback(lambda h: courier.send(resolve, done, None))
    try:
        async with asyncio.timeout(timeout):
            await done
    except TimeoutError:
        raise PublishError(f"no ack for publish to {handle.topic!r} within {timeout} s") from None
    handle.wait(0)  # raises PublishError when the broker refused it
    return handle


async def replied(handle: ReplyHandle) -> Message:
    """Await the reply ``handle`` is for."""
    courier = courier_for(asyncio.get_running_loop())
    answer: asyncio.Future[Message] = courier.loop.create_future()
    handle.add_done_callback(lambda h: courier.send(resolve, answer, h.reply))
    return await answer


def cancel_when_sent(sending: asyncio.Future[ReplyHandle]) -> None:
    """A done-callback for a request sent in a thread: forget it once it is sent."""
    if not sending.cancelled() and sending.exception() is None:
        sending.result().cancel()
