"""Time as a dependency, so servo interpolation is testable without sleeping.

A :class:`Clock` tells the time, sleeps, and waits on an event; the wait must return
as soon as the event is set, which is what lets a stop request end a move within one
interpolation step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "ManualClock", "RealClock"]


class Clock(Protocol):
    """What :class:`hw.ServoRig` needs from time."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block up to ``timeout`` seconds or until ``event`` is set; return whether it is."""
        ...


class RealClock:
    """The wall clock: ``time.monotonic``, ``time.sleep`` and ``Event.wait``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(timeout, 0.0))


class ManualClock:
    """A test clock: sleeping and waiting advance virtual time instantly and are counted.

    Args:
        start: the initial virtual time.
        on_step: called with the step number (1, 2, ...) at the start of every
            ``sleep``/``wait``, before the event is checked, e.g. to set a stop event
            "during" step N.

    Attributes:
        steps: how many ``sleep``/``wait`` calls there were.
        time: the current virtual time.
    """

    def __init__(
        self, start: float = 0.0, *, on_step: Callable[[int], None] | None = None
    ) -> None:
        self.time = start
        self.steps = 0
        self.on_step = on_step

    def now(self) -> float:
        return self.time

    def _step(self) -> None:
        self.steps += 1
        if self.on_step is not None:
            self.on_step(self.steps)

    def sleep(self, seconds: float) -> None:
        self._step()
        self.time += max(seconds, 0.0)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self._step()
        if event.is_set():
            return True  # a real wait returns at once: no time passes
        self.time += max(timeout, 0.0)
        return False
