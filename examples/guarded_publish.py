"""Rate limiting and a circuit breaker around ``publish_event``, by composition.

    MQTT_URL=mqtt://localhost:1883 python examples/guarded_publish.py

``GuardedPublisher`` wraps a client: a token bucket (``RateLimiter``) refuses publishes
beyond ``rate`` per second (after a ``burst``), and a ``CircuitBreaker`` stops trying
after ``failures`` failed publishes in a row, fails fast for ``reset_after`` seconds, then
lets one trial through. Both refusals are ``PublishError`` subclasses, so callers that
already handle the client's errors need no new ``except``. Time is injected
(``clock=``), so tests move it by hand instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tars_mqtt import MQTTClient, MQTTConfig, PublishError, PublishHandle
from tars_mqtt.testing import ManualClock, free_port

__all__ = ["CircuitBreaker", "CircuitOpen", "GuardedPublisher", "RateLimited", "RateLimiter"]

Clock = Callable[[], float]


class RateLimited(PublishError):
    """Refused by the rate limiter: over ``rate`` per second."""


class CircuitOpen(PublishError):
    """Refused without trying: recent publishes failed, the breaker is open."""


class RateLimiter:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class CircuitBreaker:
    """closed → (``failures`` in a row) → open → (``reset_after`` s) → half_open → ..."""

    def __init__(self, failures: int = 5, reset_after: float = 30.0, *,
                 clock: Clock = time.monotonic) -> None:
        self.failures, self.reset_after, self._clock = failures, reset_after, clock
        self._failed = 0
        self._opened_at: float | None = None
        self._trial = False  # a half-open trial is in flight
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_after:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a publish be tried now? In half-open, one trial at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial:
                self._trial = True
                return True
            return False

    def release(self) -> None:
        """Give back a half-open trial that was allowed but not used."""
        with self._lock:
            self._trial = False

    def record_success(self) -> None:
        with self._lock:
            self._failed, self._opened_at, self._trial = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self._failed += 1
            if self._trial or self._failed >= self.failures:
                self._opened_at = self._clock()  # (re)open: the trial failed, or too many
            self._trial = False


class GuardedPublisher:
    """``publish_event`` through a rate limiter and a circuit breaker (either optional)."""

    def __init__(self, client: MQTTClient, *, limiter: RateLimiter | None = None,
                 breaker: CircuitBreaker | None = None) -> None:
        self.client, self.limiter, self.breaker = client, limiter, breaker

    def publish_event(self, topic: str, event_type: str, data: Any = None, qos: int = 1,
                      retain: bool = False) -> PublishHandle:
        """Publish, or raise ``RateLimited`` / ``CircuitOpen`` / the client's ``PublishError``."""
        if self.breaker is not None and not self.breaker.allow():
            raise CircuitOpen(f"circuit open: not publishing to {topic!r}")
        if self.limiter is not None and not self.limiter.try_acquire():
            if self.breaker is not None:
                self.breaker.release()  # not tried: no verdict on the link
            raise RateLimited(f"over {self.limiter.rate:g}/s: not publishing to {topic!r}")
        try:
            handle = self.client.publish_event(topic, event_type, data, qos=qos, retain=retain)
        except PublishError:
            if self.breaker is not None:
                self.breaker.record_failure()
            raise
        if self.breaker is not None:
            handle.add_done_callback(self._settled)  # the broker's verdict, when it comes
        return handle

    def _settled(self, handle: PublishHandle) -> None:  # on paho's thread: quick, no raising
        assert self.breaker is not None
        try:
            handle.wait(0)
        except PublishError:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()


def main() -> None:
    clock = ManualClock()
    with MQTTClient.from_env(client_id="example-guarded") as client:
        limited = GuardedPublisher(client, limiter=RateLimiter(rate=2, burst=5, clock=clock.now))
        outcomes = []
        for n in range(8):
            try:
                limited.publish_event("telemetry/pose", "telemetry.pose", {"n": n}).wait(5)
                outcomes.append("sent")
            except RateLimited:
                outcomes.append("limited")
        clock.advance(1.0)  # one second later: 2 more tokens
        limited.publish_event("telemetry/pose", "telemetry.pose", {"n": 8}).wait(5)
        print("rate limiter:", " ".join(outcomes), "| after 1 s: sent")

    # The breaker, on a client whose broker is gone and which must not queue offline.
    gone = MQTTConfig(url=f"mqtt://127.0.0.1:{free_port()}", client_id="example-breaker",
                      offline_queue=0)
    breaker = CircuitBreaker(failures=3, reset_after=10.0, clock=clock.now)
    guarded = GuardedPublisher(MQTTClient(gone), breaker=breaker)
    steps = []
    for _ in range(5):
        try:
            guarded.publish_event("telemetry/pose", "telemetry.pose", {})
        except CircuitOpen:
            steps.append("fast-fail")
        except PublishError:
            steps.append("failed")
    steps.append(breaker.state)
    clock.advance(10.0)
    steps.append(breaker.state)
    print("circuit breaker:", " ".join(steps))


if __name__ == "__main__":
    main()
