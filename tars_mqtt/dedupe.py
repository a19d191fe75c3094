"""Remember recently seen envelope ids so QoS 1 redeliveries reach handlers once."""

from __future__ import annotations

import threading
from collections import OrderedDict

from .timing import Clock, MonotonicClock

__all__ = ["Deduplicator"]


class Deduplicator:
    """A TTL + size-bounded set of ids; ``ttl == 0`` turns it off.

    Bounded both ways so a flood of unique ids cannot grow memory: the oldest id goes
    first when ``max_entries`` is reached, and ids older than ``ttl`` are forgotten.
    """

    def __init__(self, ttl: float, max_entries: int, *, clock: Clock | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock or MonotonicClock()
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def is_duplicate(self, message_id: str) -> bool:
        """True when ``message_id`` was seen within the TTL; records it otherwise."""
        if not self.enabled:
            return False
        now = self._clock.now()
        with self._lock:
            self._expire(now)
            if message_id in self._seen:
                return True
            self._seen[message_id] = now
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return False

    def _expire(self, now: float) -> None:
        limit = now - self.ttl
        while self._seen:
            oldest_id, seen_at = next(iter(self._seen.items()))
            if seen_at > limit:
                return
            del self._seen[oldest_id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
