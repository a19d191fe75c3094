"""Time as a dependency: one clock for the client and the hardware, and backoff as a value.

Every part that waits or tells the time takes a :class:`Clock` (trio's idea), so TTLs,
heartbeats, servo interpolation and a chip's start-up delay are tested on a
:class:`ManualClock` without sleeping. Backoff maths is separate from waiting
(urllib3's ``Retry``), so tests check delays without waiting at all.

This module imports nothing but the standard library: :mod:`hw` uses its clock
without learning anything of MQTT.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Backoff", "Clock", "ManualClock", "MonotonicClock"]


class Clock(Protocol):
    """What code that waits needs from time: the time, a sleep, and a wait on an event.

    ``wait`` must return as soon as the event is set: that is what lets a stop request
    end a servo move within one interpolation step.
    """

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (nothing for ``seconds <= 0``)."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block up to ``timeout`` seconds or until ``event`` is set; return whether it is."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic``, ``time.sleep`` and ``Event.wait``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(timeout, 0.0))


class ManualClock:
    """A clock that moves only when told; sleeping and waiting advance it at once.

    Thread-safe, so a test can :meth:`advance` it while a worker reads it.

    Args:
        start: the initial time.
        on_step: called with the step number (1, 2, ...) at the start of every
            ``sleep``/``wait``, before the event is checked, e.g. to set a stop event
            "during" step N.

    Attributes:
        steps: how many ``sleep``/``wait`` calls there were.
    """

    def __init__(
        self, start: float = 0.0, *, on_step: Callable[[int], None] | None = None
    ) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.steps = 0
        self.on_step = on_step

    def now(self) -> float:
        with self._lock:
            return self._now

    @property
    def time(self) -> float:
        """The current time (same as :meth:`now`)."""
        return self.now()

    def advance(self, seconds: float) -> None:
        """Move the time on by ``seconds``."""
        with self._lock:
            self._now += seconds

    def _step(self) -> None:
        with self._lock:
            self.steps += 1
            step = self.steps
        if self.on_step is not None:
            self.on_step(step)  # outside the lock: it may read the clock

    def sleep(self, seconds: float) -> None:
        self._step()
        self.advance(max(seconds, 0.0))

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self._step()
        if event.is_set():
            return True  # a real wait returns at once: no time passes
        self.advance(max(timeout, 0.0))
        return False


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
