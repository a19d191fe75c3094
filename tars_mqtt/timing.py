"""Time as a dependency: the clock, and reconnect backoff as a pure value.

Backoff maths is separate from waiting (urllib3's ``Retry``), so tests check delays
without sleeping, and a manual clock drives TTLs and heartbeats.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Backoff", "Clock", "ManualClock", "MonotonicClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told; for tests of TTLs, timers and backoff."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between ``min_delay`` and a doubling ceiling.

    Attempt ``n`` waits a random time in ``[min_delay, min(max_delay, min_delay * 2**(n+1))]``:
    the first retry comes soon, later ones back off, and many clients that lost the same
    broker spread out instead of reconnecting in one storm.
    """

    min_delay: float = 0.5
    max_delay: float = 5.0
    factor: float = 2.0

    def ceiling(self, attempt: int) -> float:
        return min(self.max_delay, self.min_delay * self.factor ** (max(0, min(attempt, 60)) + 1))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before reconnect ``attempt`` (0-based), always within the configured bounds."""
        low = self.min_delay
        high = max(low, self.ceiling(attempt))
        return low + (high - low) * (rng or random).random()
