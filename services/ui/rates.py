"""Messages per second per topic, in one-tick buckets over the last minutes (pure).

Any login may publish on fresh topic names as fast as it likes, so the number of topics
kept is bounded: beyond ``max_topics`` the rest are counted together as ``OTHER``.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

__all__ = ["OTHER", "Rates"]

OTHER = "(other topics)"


class Rates:
    """``add()`` per message, ``tick()`` once a second closes a bucket and returns it."""

    def __init__(self, now: float, *, window: int = 180, max_topics: int = 40) -> None:
        self.max_topics = max_topics
        self._start = now
        self._current: Counter[str] = Counter()
        self._buckets: deque[dict[str, Any]] = deque(maxlen=window)

    def add(self, topic: str) -> None:
        if topic in self._current or len(self._current) < self.max_topics:
            self._current[topic] += 1
        else:
            self._current[OTHER] += 1

    def tick(self, now: float, wall_now: float) -> dict[str, Any]:
        """Close the bucket open since the last tick: ``{t, dt, counts}`` (wall time ``t``)."""
        bucket = {"t": round(wall_now, 3), "dt": round(max(now - self._start, 1e-3), 3),
                  "counts": dict(self._current)}
        self._buckets.append(bucket)
        self._start = now
        self._current = Counter()
        return bucket

    def history(self) -> list[dict[str, Any]]:
        """The closed buckets, oldest first (what a page that just opened draws)."""
        return list(self._buckets)
