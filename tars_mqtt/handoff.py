"""Hand-offs from the client's threads to an event loop: futures resolved thread-safely.

A ``PublishHandle`` or ``ReplyHandle`` settles on paho's network thread; these turn that
into something a coroutine awaits, and never touch a loop that has already closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from .envelope import Message
from .errors import PublishError
from .publishing import PublishHandle
from .requests import ReplyHandle

__all__ = ["acked", "call_soon", "cancel_when_sent", "replied", "resolve"]


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def call_soon(loop: asyncio.AbstractEventLoop, func: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(func, *args)


async def acked(handle: PublishHandle, timeout: float | None) -> PublishHandle:
    """Await the broker's ack (QoS 1/2).

    Raises:
        PublishError: none within ``timeout``, or the broker refused the message.
    """
    if handle.qos == 0:
        return handle
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    handle.add_done_callback(lambda h: call_soon(loop, resolve, done, None))
    try:
        async with asyncio.timeout(timeout):
            await done
    except TimeoutError:
        raise PublishError(f"no ack for publish to {handle.topic!r} within {timeout} s") from None
    handle.wait(0)  # raises PublishError when the broker refused it
    return handle


async def replied(handle: ReplyHandle) -> Message:
    """Await the reply ``handle`` is for."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Message] = loop.create_future()
    handle.add_done_callback(lambda h: call_soon(loop, resolve, answer, h.reply))
    return await answer


def cancel_when_sent(sending: asyncio.Future[ReplyHandle]) -> None:
    """A done-callback for a request sent in a thread: forget it once it is sent."""
    if not sending.cancelled() and sending.exception() is None:
        sending.result().cancel()
