"""Small helpers shared by the client's unit and integration tests: wait, never sleep-and-hope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tars_mqtt import Message

WAIT = 10.0


class Collector:
    """A handler that keeps every message it gets and lets a test wait for a count.

    ``gate``, when given, holds every call until the test sets it (a slow handler on demand).
    """

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.messages: list[Message] = []
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.gate = gate
        self._cond = threading.Condition()

    def __call__(self, msg: Message) -> None:
        self.entered.set()
        if self.gate is not None and not self.gate.wait(WAIT):
            raise AssertionError("the test never opened the gate")
        with self._cond:
            self.messages.append(msg)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> bool:
        """True once ``count`` messages arrived; False after ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)

    @property
    def payloads(self) -> list[bytes]:
        with self._cond:
            return [m.payload for m in self.messages]

    @property
    def topics(self) -> list[str]:
        with self._cond:
            return [m.topic for m in self.messages]


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` (for state with no event to wait on) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()
