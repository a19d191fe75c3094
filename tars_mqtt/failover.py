"""Which of the brokers in ``MQTT_URL`` a client's next connection attempt goes to (pure).

The transport asks :class:`BrokerRing` before every attempt and tells it what came of it,
so the rotation is tested without a socket; the waiting stays the transport's backoff.
"""

from __future__ import annotations

from .config import MQTTConfig
from .errors import ConnectError

__all__ = ["BrokerRing"]


class BrokerRing:
    """The brokers of one client in order, and where its attempts are.

    The same broker while the link holds; the next one (after the last, the first) after a
    lost link or a failed attempt. Brokers not tried since the last connection are tried
    at once; a lap on which every one failed backs off like one failed attempt on a
    single broker. With one broker every answer is what the transport did before lists.
    """

    def __init__(self, brokers: tuple[MQTTConfig, ...]) -> None:
        if not brokers:
            raise ValueError("a client needs at least one broker")
        self.brokers = brokers
        self.reset()

    def reset(self) -> None:
        """A fresh start: the first broker next, nothing failed yet."""
        self._at = 0
        self._move_on = False  # the next attempt goes to the next broker
        self._failures = 0  # failed attempts since the last connection
        self._start_errors: list[ConnectError] = []

    @property
    def current(self) -> MQTTConfig:
        """The broker of the attempt under way, or of the link."""
        return self.brokers[self._at]

    def next_attempt(self) -> MQTTConfig:
        """The broker to connect to now."""
        if self._move_on:
            self._at = (self._at + 1) % len(self.brokers)
        self._move_on = True  # until connected() says this one works
        return self.current

    def connected(self) -> None:
        self._move_on, self._failures = False, 0

    def lost(self) -> None:
        """The link to the current broker broke: the next attempt goes elsewhere."""
        self._move_on = True

    def failed(self) -> bool:
        """An attempt failed; True when the next broker should be tried without waiting."""
        self._failures += 1
        return self._failures % len(self.brokers) != 0

    def start_failed(self, error: ConnectError, final: bool = False) -> ConnectError | None:
        """Before the first connection: what ``start()`` should raise once every broker has
        failed once (each named), or at once when ``final``; None while some are untried."""
        self._start_errors.append(error)
        errors = self._start_errors
        if final or len(errors) == 1 == len(self.brokers):
            return error
        if len(errors) < len(self.brokers):
            return None
        return ConnectError("no broker answered: " + "; ".join(map(str, errors)),
                            reason=error.reason, reason_code=error.reason_code)
