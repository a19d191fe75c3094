"""Request/reply: send a request, match its reply by correlation id, forget the late ones.

``send_request()`` returns a :class:`ReplyHandle` at once (once the request is on its
way); the sync client waits on it, the asyncio twin awaits it through
``add_done_callback``. Timed-out and cancelled requests leave nothing behind.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from .envelope import Inbound, Message
from .errors import RequestTimeout
from .publishing import Envelopes, Outbox
from .stats import Counters
from .topics import validate_topic

__all__ = ["PendingRequests", "ReplyHandle", "Requester"]

log = logging.getLogger("tars_mqtt")

Listen = Callable[[str, Callable[[Inbound], None]], None]


class ReplyHandle:
    """The reply to one request in flight: ``wait()`` for it, or await it (aio).

    ``request_id`` is the request's envelope id, which the reply's ``correlate`` carries.
    """

    def __init__(self, request_id: str, topic: str, forget: Callable[[str], None]) -> None:
        self.request_id = request_id
        self.topic = topic
        self._forget = forget
        self._reply: Message | None = None
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[ReplyHandle], None]] | None = []

    @property
    def done(self) -> bool:
        return self._event.is_set()

    @property
    def reply(self) -> Message | None:
        """The reply, once it came."""
        return self._reply

    def wait(self, timeout: float | None = 5.0) -> Message:
        """Block for the reply; stop waiting for it after ``timeout``.

        Raises:
            RequestTimeout: no reply within ``timeout``; a later one counts as late.
        """
        if not self._event.wait(timeout):
            self.cancel()
            if self._reply is None:  # it may have come between the wait and the cancel
                raise RequestTimeout(f"no reply to request on {self.topic!r} within {timeout} s")
        assert self._reply is not None
        return self._reply

    def add_done_callback(self, callback: Callable[[ReplyHandle], None]) -> None:
        """Call ``callback(handle)`` when the reply comes; at once if it has.

        Otherwise it runs on the thread that routes the reply (paho's network thread): it
        must be quick and must not raise.
        """
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        callback(self)

    def cancel(self) -> None:
        """Stop waiting: a reply that comes now is counted as late."""
        self._forget(self.request_id)

    def _resolve(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks or [], None
        self._event.set()
        for callback in callbacks:
            callback(self)

    def __repr__(self) -> str:
        state = "replied" if self.done else "waiting"
        return f"ReplyHandle(topic={self.topic!r}, request_id={self.request_id!r}, {state})"


class PendingRequests:
    """One handle per request id; a reply resolves it, a cancel removes it (no growth)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[str, ReplyHandle] = {}

    def open(self, request_id: str, topic: str) -> ReplyHandle:
        handle = ReplyHandle(request_id, topic, self.cancel)
        with self._lock:
            self._handles[request_id] = handle
        return handle

    def resolve(self, message: Message) -> bool:
        """Deliver a reply; False when nobody waits for it (late or unknown)."""
        if message.correlate is None:
            return False
        with self._lock:
            handle = self._handles.pop(message.correlate, None)
            if handle is None:
                return False
            handle._reply = message  # under the lock: a waiter timing out sees it, or it is late
        handle._resolve()
        return True

    def cancel(self, request_id: str) -> None:
        with self._lock:
            self._handles.pop(request_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._handles)


class Requester:
    """The request side of one client.

    ``listen(topic, handler)`` routes a reply topic to ``handler`` and returns once the
    broker has the subscription; requests go out through the client's ``outbox``.
    """

    def __init__(self, *, own_topic: str, listen: Listen, outbox: Outbox,
                 envelopes: Envelopes, counters: Counters) -> None:
        self.own_topic = own_topic
        self.pending = PendingRequests()
        self._listen, self._counters = listen, counters
        self._outbox, self._envelopes = outbox, envelopes

    def send_request(self, topic: str, event_type: str, data: Any = None, qos: int = 1, *,
                     reply_topic: str | None = None) -> ReplyHandle:
        """Publish a request (after subscribing its reply topic); its reply's handle.

        Raises:
            ValueError, PublishError: as ``publish_event``.
        """
        reply_topic = validate_topic(reply_topic) if reply_topic else self.own_topic
        self._listen(reply_topic, self._on_reply)
        request_id = uuid.uuid4().hex
        handle = self.pending.open(request_id, topic)
        try:
            envelope = self._envelopes.make(event_type, data, reply_to=reply_topic,
                                            envelope_id=request_id)
            self._outbox.publish(topic, envelope.encode(), qos, False, correlation=request_id,
                                 response_topic=reply_topic)
        except BaseException:
            handle.cancel()
            raise
        return handle

    def _on_reply(self, inbound: Inbound) -> None:  # paho's network thread
        if not self.pending.resolve(inbound.message(self._counters)):
            self._counters.add("late_replies")
            log.debug("reply on %r matches no request in flight; dropped", inbound.topic)
