"""``AsyncMQTTClient``: the asyncio twin of :class:`~tars_mqtt.MQTTClient`.

It wraps the threaded client through its public methods only. Blocking calls run in
``asyncio.to_thread``; a ``PublishHandle`` or ``ReplyHandle`` resolves a future through
the loop's ``Courier``. A coroutine handler's subscription is a feed of the sync client's
queue: the loop is woken once when deliveries start waiting and runs them in batches, in
order, so the queue's bound and policy, the ack after handling and the counters are the
sync client's own, without a thread hop per message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, overload

from . import runner
from .client import MQTTClient
from .config import MQTTConfig, QueuePolicy
from .envelope import Message
from .errors import MQTTError, RequestTimeout
from .handoff import AsyncHandler, LoopHandler, acked, cancel_when_sent, courier_for, replied
from .mailboxes import Subscription
from .publishing import PublishHandle
from .requests import ReplyHandle
from .state import ClientState
from .stats import ClientStats
from .streams import Messages

__all__ = ["AsyncMQTTClient"]

Payload = bytes | str | dict[str, Any] | list[Any] | None


class AsyncMQTTClient:
    """The threaded client, awaitable: ``async with AsyncMQTTClient(config) as client``."""

    def __init__(self, config: MQTTConfig | MQTTClient) -> None:
        self.sync = config if isinstance(config, MQTTClient) else MQTTClient(config)
        self.config = self.sync.config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: set[Messages] = set()
        self._handlers: dict[Subscription, LoopHandler] = {}

    async def start(self, timeout: float = 10.0) -> AsyncMQTTClient:
        """Connect (in a thread); handlers will run on the calling event loop."""
        self._bind(asyncio.get_running_loop())
        await asyncio.to_thread(self.sync.start, timeout)
        return self

    async def stop(self, timeout: float = 5.0) -> None:
        """End ``messages()``, drain handlers (they still run on this loop) for up to
        ``timeout``, disconnect; a handler still running then is cancelled, and what was
        not handled is not acknowledged (a persistent session gets it again)."""
        for stream in list(self._streams):
            stream.close()
        await asyncio.to_thread(self.sync.stop, timeout)
        for handler in list(self._handlers.values()):
            await handler.cancel()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            self._loop = loop
            courier = courier_for(loop)
            for handler in self._handlers.values():
                handler.bind(courier)

    async def __aenter__(self) -> AsyncMQTTClient:
        return await self.start() if self.sync.state == ClientState.NEW else self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def publish(self, topic: str, payload: Payload, qos: int = 0, retain: bool = False,
                      *, timeout: float | None = 10.0) -> PublishHandle:
        """Publish; QoS 1/2 return once the broker acknowledged (else ``PublishError``)."""
        return await acked(self.sync.publish(topic, payload, qos, retain), timeout)

    async def publish_event(self, topic: str, event_type: str, data: Any = None, qos: int = 1,
                            retain: bool = False, correlate: str | None = None, *,
                            reply_to: str | None = None,
                            timeout: float | None = 10.0) -> PublishHandle:
        handle = self.sync.publish_event(topic, event_type, data, qos, retain, correlate,
                                         reply_to=reply_to)
        return await acked(handle, timeout)

    async def publish_health(self, ok: bool, event: str, error: str | None = None) -> None:
        await acked(self.sync.publish_health(ok, event, error), 10.0)

    async def request(self, topic: str, event_type: str, data: Any = None,
                      timeout: float = 5.0, qos: int = 1, *, reply_topic: str | None = None
                      ) -> Message:
        """Await the reply to a request; ``RequestTimeout`` after ``timeout``; cancellable."""
        sending = asyncio.ensure_future(asyncio.to_thread(
            self.sync.send_request, topic, event_type, data, qos, reply_topic=reply_topic))
        handle: ReplyHandle | None = None
        try:
            async with asyncio.timeout(timeout):
                handle = await asyncio.shield(sending)
                return await replied(handle)
        except TimeoutError:
            raise RequestTimeout(f"no reply to request on {topic!r} within {timeout} s") from None
        finally:
            if handle is not None:
                handle.cancel()
            else:  # given up before it was sent: forget it once it is
                sending.add_done_callback(cancel_when_sent)

    async def reply(self, request: Message, event_type: str, data: Any = None, qos: int = 1,
                    *, timeout: float | None = 10.0) -> PublishHandle:
        """Answer ``request`` on its ``reply_to`` topic, correlated to it."""
        return await acked(self.sync.reply(request, event_type, data, qos), timeout)

    @overload
    def subscribe(self, topic_filter: str, handler: None = None, qos: int = 0, *,
                  raw: bool = False) -> Callable[[AsyncHandler], AsyncHandler]: ...
    @overload
    def subscribe(self, topic_filter: str, handler: AsyncHandler, qos: int = 0, *,
                  raw: bool = False) -> Subscription: ...

    def subscribe(self, topic_filter: str, handler: AsyncHandler | None = None, qos: int = 0,
                  *, raw: bool = False) -> Subscription | Callable[[AsyncHandler], AsyncHandler]:
        """Run ``await handler(message)`` on the client's loop; a decorator without handler.

        Never blocks the loop: it does not wait for the SUBACK (``messages()`` does).
        """
        if handler is None:
            def decorate(func: AsyncHandler) -> AsyncHandler:
                self.subscribe(topic_filter, func, qos, raw=raw)
                return func
            return decorate
        with contextlib.suppress(RuntimeError):
            self._bind(asyncio.get_running_loop())
        if self._loop is None and self.sync.state != ClientState.NEW:
            raise MQTTError("no event loop for async handlers: subscribe from a coroutine")
        runner = LoopHandler(handler)
        if self._loop is not None:
            runner.bind(courier_for(self._loop))
        runner.feed = self.sync.subscribe_feed(topic_filter, handler, runner.wake, qos, raw=raw,
                                               timeout=0)
        self._handlers[runner.feed.subscription] = runner
        return runner.feed.subscription

    def unsubscribe(self, target: Subscription | str) -> None:
        self.sync.unsubscribe(target)  # sends UNSUBSCRIBE, does not wait
        for sub in [s for s in self._handlers if not s.active]:
            del self._handlers[sub]

    def messages(self, topic_filter: str, qos: int = 0, *, maxsize: int | None = None,
                 policy: QueuePolicy | None = None) -> Messages:
        """``async for msg in client.messages("wake/#")`` (or ``async with`` it, for scope).

        Beyond ``maxsize`` waiting messages, ``policy`` blocks the worker or drops (counted).
        """
        stream = Messages(self.sync, topic_filter, qos, maxsize or self.config.queue_size,
                          policy or self.config.queue_policy, on_close=self._streams.discard)
        self._streams.add(stream)
        return stream

    async def run_forever(self) -> None:
        """Start (waiting for a broker that is down), serve until SIGINT/SIGTERM or
        ``stop()``, then stop cleanly.

        Raises:
            ConnectError: the broker refused the credentials, or TLS failed.
            SubscribeError: the broker refused a subscription made before the start.
        """
        await runner.run_async(self)

    @property
    def state(self) -> ClientState:
        """The sync client's state."""
        return self.sync.state

    @classmethod
    def from_env(cls, prefix: str = "MQTT_", *, client_id: str | None = None,
                 defaults: Mapping[str, Any] | None = None) -> AsyncMQTTClient:
        return cls(MQTTConfig.from_env(prefix, client_id=client_id, defaults=defaults))

    @property
    def is_connected(self) -> bool:
        return self.sync.is_connected

    @property
    def paho(self) -> Any:
        """The underlying paho client, for what tars_mqtt does not wrap."""
        return self.sync.paho

    def stats(self) -> ClientStats:
        return self.sync.stats()

    def liveness_problem(self, handler_limit: float = 30.0) -> str | None:
        """Why the client is wedged, or None; see ``MQTTClient.liveness_problem`` (a
        coroutine handler running for more than ``handler_limit`` s is one reason)."""
        return self.sync.liveness_problem(handler_limit)
