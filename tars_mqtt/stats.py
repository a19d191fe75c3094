"""Counters every part of the client bumps, the frozen snapshot users read, and the
throttle that keeps a flood of bad messages from flooding the log as well."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ClientStats", "Counters", "LogThrottle"]


@dataclass(frozen=True)
class ClientStats:
    """A snapshot; latencies are seconds from arrival at the client to handler return."""

    published: int = 0
    received: int = 0
    dispatched: int = 0
    dropped: int = 0
    duplicates: int = 0
    decode_errors: int = 0
    handler_errors: int = 0
    reconnects: int = 0
    failed_connects: int = 0  # connection attempts that failed or were refused
    queue_depth: int = 0
    offline_queued: int = 0
    late_replies: int = 0
    callback_errors: int = 0
    unrouted: int = 0  # messages no subscription took (it was removed while they came)
    handler_latency_p50: float = 0.0
    handler_latency_p99: float = 0.0
    broker: str = ""  # the URL of the broker connected to ("" while disconnected)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Counters:
    """Thread-safe counters plus a ring of recent handler latencies for percentiles.

    Each thread bumps its own dict, so the hot path (three counts per message) takes no
    lock; ``get``/``snapshot`` sum them, folding the counts of finished threads.
    """

    _NAMES = (
        "published", "received", "dispatched", "dropped", "duplicates",
        "decode_errors", "handler_errors", "reconnects", "late_replies", "callback_errors",
        "unrouted", "failed_connects",
    )

    def __init__(self, latency_window: int = 2048) -> None:
        self._lock = threading.Lock()  # the list of per-thread dicts, and folding
        self._local = threading.local()
        self._done = dict.fromkeys(self._NAMES, 0)  # counts of threads that have finished
        self._threads: list[tuple[threading.Thread, dict[str, int]]] = []
        # deque.append is atomic; snapshot copies it in one C call.
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._throttles: dict[str, LogThrottle] = {}

    def add(self, name: str, amount: int = 1) -> None:
        try:
            values: dict[str, int] = self._local.values
        except AttributeError:
            values = self._local.values = dict.fromkeys(self._NAMES, 0)
            with self._lock:
                self._threads.append((threading.current_thread(), values))
        values[name] += amount

    def add_logged(self, name: str) -> int | None:
        """Count one ``name``; None when its log line should be skipped, else the number
        of them not logged since the last line (see :class:`LogThrottle`)."""
        self.add(name)
        throttle = self._throttles.get(name)
        if throttle is None:
            throttle = self._throttles.setdefault(name, LogThrottle())
        return throttle.allow()

    def get(self, name: str) -> int:
        return self._totals()[name]

    def record_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)

    def _totals(self) -> dict[str, int]:
        with self._lock:
            live = []
            for thread, values in self._threads:
                if thread.is_alive():
                    live.append((thread, values))
                else:  # it adds nothing more: fold it, so the list stays short
                    for name, count in values.items():
                        self._done[name] += count
            self._threads = live
            totals = dict(self._done)
            for _, values in live:
                for name, count in values.items():
                    totals[name] += count
        return totals

    def snapshot(self, *, queue_depth: int, offline_queued: int, broker: str = "") -> ClientStats:
        values = self._totals()
        ordered = sorted(self._latencies.copy())
        return ClientStats(
            **values,
            queue_depth=queue_depth,
            offline_queued=offline_queued,
            handler_latency_p50=_percentile(ordered, 0.50),
            handler_latency_p99=_percentile(ordered, 0.99),
            broker=broker,
        )


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LogThrottle:
    """At most ``burst`` log lines per ``interval`` seconds for one kind of event.

    Anyone may send a thousand malformed messages a second; each is counted, but only the
    first few in every interval are logged, the next line saying how many went unlogged.
    """

    def __init__(self, interval: float = 10.0, burst: int = 10) -> None:
        self.interval = interval
        self.burst = burst
        self._window_end = 0.0
        self._logged = 0
        self._quiet = 0
        self._lock = threading.Lock()

    def allow(self) -> int | None:
        """None: stay quiet; else log now, and say how many were not logged before it."""
        now = time.monotonic()
        with self._lock:
            if now >= self._window_end:
                self._window_end, self._logged = now + self.interval, 0
            if self._logged >= self.burst:
                self._quiet += 1
                return None
            self._logged += 1
            quiet, self._quiet = self._quiet, 0
            return quiet


def suppressed(count: int) -> str:
    """The tail of a throttled log line: how many like it went unlogged."""
    return f" ({count} more like it not logged)" if count else ""
