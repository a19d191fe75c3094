"""What happens to a publish after ``publish()`` returns: the order it goes out in,
the offline queue, and the handle that says when the broker has it."""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .acks import AckBook, PubAck
from .envelope import Envelope, to_data
from .errors import PublishError
from .stats import Counters
from .topics import validate_qos, validate_topic

__all__ = ["Envelopes", "OfflineQueue", "Outbox", "Outgoing", "PublishHandle", "new_id"]


class _Ids:
    """Envelope ids: 16 bytes of the OS's randomness each, as hex, like ``uuid4().hex``.

    Random, not counted: an id someone could predict is one they could send first, and
    dedup would then drop the real message. Read 256 at a time: one ``getrandom`` per
    publish cost more than the rest of a QoS 0 publish (and let other threads take the
    interpreter in the middle of it).
    """

    _SIZE, _MANY = 16, 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0

    def new(self) -> str:
        with self._lock:
            if self._at >= len(self._pool):
                self._pool, self._at = os.urandom(self._SIZE * self._MANY), 0
            at = self._at
            self._at = at + self._SIZE
            return self._pool[at:at + self._SIZE].hex()

    def forget(self) -> None:
        """In a forked child: never hand out the ids the parent may hand out too."""
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.forget)
new_id = _IDS.new


class PublishHandle:
    """Returned by every publish; ``wait()`` returns once the broker has the message.

    QoS 0 counts as done when written to the socket; QoS 1/2 when the broker acked.
    A publish made while offline waits for the reconnect and the flush.
    """

    def __init__(self, topic: str, qos: int) -> None:
        self.topic = topic
        self.qos = qos
        self.mid: int | None = None
        self._settled = False
        self._event: threading.Event | None = None  # made only for a wait() before settle
        self._error: str | None = None
        self._callbacks: list[Callable[[PublishHandle], None]] | None = []
        self._cb_lock = threading.Lock()

    def settle(self, result: PubAck) -> None:
        """The broker's answer came (or the client gave up): wake waiters, run callbacks."""
        self._error = result.error
        with self._cb_lock:
            self._settled = True
            event, callbacks, self._callbacks = self._event, self._callbacks or [], None
        if event is not None:
            event.set()
        for callback in callbacks:
            callback(self)

    def add_done_callback(self, callback: Callable[[PublishHandle], None]) -> None:
        """Call ``callback(handle)`` once settled; at once if it already is.

        Otherwise it runs on the settling thread, usually paho's network thread: it must
        be quick and must not raise.
        """
        with self._cb_lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        callback(self)

    @property
    def done(self) -> bool:
        return self._settled

    def wait(self, timeout: float | None = 10.0) -> None:
        """Block until acknowledged.

        Raises:
            PublishError: no ack within ``timeout``, or the broker refused the message.
        """
        with self._cb_lock:
            if not self._settled and self._event is None:
                self._event = threading.Event()
            event = self._event  # None: settled before anyone waited
        if event is not None and not event.wait(timeout):
            raise PublishError(f"no ack for publish to {self.topic!r} within {timeout} s")
        if self._error is not None:
            raise PublishError(f"publish to {self.topic!r} failed: {self._error}")

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        return f"PublishHandle(topic={self.topic!r}, qos={self.qos}, mid={self.mid}, {state})"


@dataclass
class Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    handle: PublishHandle
    correlation: str | None = None
    response_topic: str | None = None


class OfflineQueue:
    """Publishes made while disconnected, kept in order; full means ``PublishError``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Outgoing] = deque()

    def push(self, item: Outgoing) -> None:
        if self.limit == 0:
            raise PublishError(
                f"not connected, and the offline queue is off (offline_queue=0): {item.topic!r}")
        if len(self._items) >= self.limit:
            raise PublishError(
                f"not connected, and the offline queue is full ({self.limit} messages):"
                f" {item.topic!r} not queued")
        self._items.append(item)

    def take_all(self) -> list[Outgoing]:
        items = list(self._items)
        self._items.clear()
        return items

    def put_back(self, items: list[Outgoing]) -> None:
        """Return unsent items to the front, keeping their order."""
        self._items.extendleft(reversed(items))

    def __len__(self) -> int:
        return len(self._items)


class Link(Protocol):
    """What the outbox needs of the transport."""

    connected: bool

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool,
                correlation: str | None = None, response_topic: str | None = None
                ) -> tuple[int, bool]: ...


class Outbox:
    """Every publish of one client, in order: straight to paho while connected and nothing
    waits offline, else into the offline queue, flushed in order after a reconnect."""

    def __init__(self, link: Link, counters: Counters, *, offline_limit: int,
                 name: str) -> None:
        self._link, self._counters, self._name = link, counters, name
        self._offline = OfflineQueue(offline_limit)
        self._lock = threading.RLock()  # the order of publishes
        self._refusing = False
        self.acks: AckBook[PubAck] = AckBook()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool, *,
                correlation: str | None = None, response_topic: str | None = None
                ) -> PublishHandle:
        """Check and send one message; its handle.

        Raises:
            ValueError: a malformed topic, response topic or QoS.
            PublishError: as ``send``.
        """
        validate_topic(topic)
        if response_topic is not None:
            validate_topic(response_topic)
        validate_qos(qos)
        return self.send(Outgoing(topic, payload, qos, retain, PublishHandle(topic, qos),
                                  correlation, response_topic))

    def send(self, item: Outgoing) -> PublishHandle:
        """Raises:
            PublishError: offline and the offline queue is full or off, or stopping.
        """
        with self._lock:
            if self._refusing:
                raise PublishError(f"client {self._name!r} is stopped:"
                                   f" cannot publish to {item.topic!r}")
            if not (self._link.connected and not self._offline and self._hand_over(item)):
                self._offline.push(item)
        return item.handle

    def send_now(self, item: Outgoing) -> bool:
        """Now or never (a heartbeat that is late says nothing): False when offline."""
        with self._lock:
            return self._link.connected and self._hand_over(item)

    def flush(self, ahead: Outgoing | None = None, behind: Outgoing | None = None) -> None:
        """Hand the offline backlog to paho in order, ``ahead`` of it and ``behind`` it.

        Those two (health) bypass the ``offline_queue`` limit: a full backlog must never
        keep health, or the backlog itself, from going out after a reconnect.
        """
        with self._lock:
            items = [i for i in (ahead, *self._offline.take_all(), behind) if i is not None]
            for n, item in enumerate(items):
                if not (self._link.connected and self._hand_over(item)):
                    self._offline.put_back(items[n:])
                    break

    def refuse(self) -> None:
        """From now on ``send`` raises; ``flush`` still works (the goodbye health)."""
        with self._lock:
            self._refusing = True

    def fail_all(self) -> None:
        """The link is gone for good: every handle still pending learns it."""
        self.acks.fail_all(PubAck("client stopped"))
        with self._lock:
            items = self._offline.take_all()
        for item in items:
            item.handle.settle(PubAck("client stopped before the message could be sent"))

    def __len__(self) -> int:
        return len(self._offline)

    def _hand_over(self, item: Outgoing) -> bool:
        mid, accepted = self._link.publish(item.topic, item.payload, item.qos, item.retain,
                                           item.correlation, item.response_topic)
        if accepted:
            item.handle.mid = mid
            self.acks.bind(mid, item.handle)
            self._counters.add("published")
        return accepted


class Envelopes:
    """The envelopes one client sends: its ``source``, a fresh id each, and a sequence."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._seq = itertools.count(1)

    def make(self, event_type: str, data: Any, *, correlate: str | None = None,
             reply_to: str | None = None, sequenced: bool = True,
             envelope_id: str | None = None) -> Envelope:
        """Raises:
            ValueError: an empty ``event_type``.
            TypeError: ``data`` is no dict or dataclass.
        """
        if not event_type:
            raise ValueError("event_type must not be empty")
        return Envelope(type=event_type, source=self.source, data=to_data(data),
                        id=envelope_id or new_id(), correlate=correlate,
                        reply_to=reply_to, seq=next(self._seq) if sequenced else None)
