"""What happens to a publish after ``publish()`` returns: acks, and the offline queue."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import PublishError

__all__ = ["AckBook", "Outgoing", "OfflineQueue", "PublishHandle"]


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

    def settle(self, result: Any) -> None:
        if isinstance(result, str):
            self._error = result
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


class Settles(Protocol):
    def settle(self, result: Any) -> None: ...


class AckBook:
    """Matches paho's ack callbacks to whoever waits on that message id.

    An ack can arrive (on the network thread) before the publisher has registered its
    id, so an early result is parked until ``bind`` collects it. No lock of ours is held
    while calling into paho, which keeps paho's own locks free of deadlock with ours.
    """

    _EARLY_LIMIT = 10000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, Settles] = {}
        self._early: OrderedDict[int, Any] = OrderedDict()

    def bind(self, mid: int, waiter: Settles) -> None:
        with self._lock:
            if mid in self._early:
                result = self._early.pop(mid)
            else:
                self._waiting[mid] = waiter
                return
        waiter.settle(result)

    def settle(self, mid: int, result: Any) -> None:
        with self._lock:
            waiter = self._waiting.pop(mid, None)
            if waiter is None:
                self._early[mid] = result
                while len(self._early) > self._EARLY_LIMIT:
                    self._early.popitem(last=False)
                return
        waiter.settle(result)

    def fail_all(self, error: str) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.settle(error)


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
