"""Requests in flight: matching replies by correlation id, forgetting timed-out ones."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .envelope import Message
from .errors import RequestTimeout

__all__ = ["PendingRequests"]


class _Slot:
    __slots__ = ("event", "on_reply", "reply")

    def __init__(self, on_reply: Callable[[Message], None] | None) -> None:
        self.event = threading.Event()
        self.on_reply = on_reply
        self.reply: Message | None = None


class PendingRequests:
    """One slot per request id; a reply fills it, a timeout removes it (no growth)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}

    def open(self, request_id: str,
             on_reply: Callable[[Message], None] | None = None) -> _Slot:
        """Expect a reply to ``request_id``; ``on_reply`` is called on the resolving thread."""
        slot = _Slot(on_reply)
        with self._lock:
            self._slots[request_id] = slot
        return slot

    def resolve(self, message: Message) -> bool:
        """Deliver a reply; False when nobody waits for it (late or unknown)."""
        if message.correlate is None:
            return False
        with self._lock:
            slot = self._slots.pop(message.correlate, None)
            if slot is None:
                return False
            slot.reply = message  # under the lock: a timing-out waiter sees it or it is late
        slot.event.set()
        if slot.on_reply is not None:
            slot.on_reply(message)
        return True

    def wait(self, slot: _Slot, request_id: str, timeout: float, topic: str) -> Message:
        if not slot.event.wait(timeout):
            self.cancel(request_id)
            if slot.reply is None:  # resolved between the wait and the cancel: keep it
                raise RequestTimeout(f"no reply to request on {topic!r} within {timeout} s")
        assert slot.reply is not None
        return slot.reply

    def cancel(self, request_id: str) -> None:
        with self._lock:
            self._slots.pop(request_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)
