"""Test-only helpers shared by the integration tests: bounded waits, inboxes, client groups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from tars_mqtt import Message, MQTTClient

__all__ = ["ClientGroup", "Inbox", "wait_until"]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; for state that has no Event.

    Returns the last result, so ``assert wait_until(...)`` fails with a clear line.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Inbox:
    """A handler that keeps what it gets and lets the test wait on a condition about it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived_at: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Message) -> None:
        with self._cond:
            self.messages.append(msg)
            self.arrived_at.append(time.monotonic())
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.messages), timeout)

    def wait_count(self, count: int, timeout: float) -> bool:
        return self.wait_for(lambda msgs: len(msgs) >= count, timeout)

    def events(self) -> list[str]:
        """The ``event`` field of each message's data: health and heartbeat payloads."""
        with self._cond:
            return [m.data.get("event", "?") if isinstance(m.data, dict) else "?"
                    for m in self.messages]

    def wait_event(self, event: str, timeout: float) -> bool:
        return self.wait_for(lambda msgs: event in self.events(), timeout)

    def numbers(self, key: str = "n") -> list[int]:
        with self._cond:
            return [int(m.data[key]) for m in self.messages if isinstance(m.data, dict)]


class ClientGroup:
    """Clients built by hand (custom backoff, several ids): all stopped on exit, even on failure."""

    def __init__(self) -> None:
        self.clients: list[MQTTClient] = []

    def add(self, client: MQTTClient) -> MQTTClient:
        self.clients.append(client)
        return client

    def __enter__(self) -> ClientGroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for client in self.clients:
            client.stop(timeout=2)
