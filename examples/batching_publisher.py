"""A batching publisher: many small readings, few messages. Composition, not a subclass.

    MQTT_URL=mqtt://localhost:1883 python examples/batching_publisher.py

``BatchingPublisher`` collects items and publishes them as one envelope
``{"items": [...], "count": n}`` when ``max_items`` are waiting, when the oldest has
waited ``max_delay`` seconds, or on ``flush()``/``close()``. It only calls the client's
public ``publish_event``, so it inherits everything the client does: the offline queue,
acks, health. ``items_of(msg)`` unpacks a batch on the receiving side.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

from tars_mqtt import Message, MQTTClient, PublishError, PublishHandle

__all__ = ["BatchingPublisher", "items_of"]

log = logging.getLogger("example.batching")


class BatchingPublisher:
    """Publish ``add()``-ed items in batches on ``topic``; thread-safe."""

    def __init__(self, client: MQTTClient, topic: str, event_type: str, *,
                 max_items: int = 50, max_delay: float = 0.5, qos: int = 1) -> None:
        if max_items < 1 or max_delay <= 0:
            raise ValueError("max_items must be >= 1 and max_delay > 0")
        self.client, self.topic, self.event_type = client, topic, event_type
        self.max_items, self.max_delay, self.qos = max_items, max_delay, qos
        self._items: list[dict[str, Any]] = []
        self._deadline: float | None = None  # when the oldest waiting item must go
        self._cond = threading.Condition()
        self._closed = False
        self._timer = threading.Thread(target=self._run_timer, daemon=True,
                                       name=f"batcher-{topic}")
        self._timer.start()

    def add(self, item: dict[str, Any]) -> PublishHandle | None:
        """Queue one item; returns the batch's handle when this item completed a batch."""
        with self._cond:
            if self._closed:
                raise RuntimeError("BatchingPublisher is closed")
            self._items.append(item)
            if self._deadline is None:
                self._deadline = time.monotonic() + self.max_delay
                self._cond.notify()
            if len(self._items) >= self.max_items:
                return self._publish_locked()
        return None

    def flush(self) -> PublishHandle | None:
        """Publish what is waiting now (None when nothing is)."""
        with self._cond:
            return self._publish_locked()

    def close(self) -> None:
        """Flush and stop the timer thread. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._publish_locked()
            self._closed = True
            self._cond.notify()
        self._timer.join(5)

    def __enter__(self) -> BatchingPublisher:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _publish_locked(self) -> PublishHandle | None:
        batch, self._items, self._deadline = self._items, [], None
        if not batch:
            return None
        # Under our lock, so batches leave in the order they were filled.
        return self.client.publish_event(self.topic, self.event_type,
                                         {"items": batch, "count": len(batch)}, qos=self.qos)

    def _run_timer(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                try:
                    self._publish_locked()
                except PublishError as exc:  # offline queue full: nobody to raise it to
                    log.warning("batch on %s dropped: %s", self.topic, exc)


def items_of(msg: Message) -> list[dict[str, Any]]:
    """The items of one batch message ([] when it is not a batch)."""
    data = msg.data if isinstance(msg.data, dict) else {}
    items = data.get("items")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def main() -> None:
    sizes: list[int] = []
    readings: list[dict[str, Any]] = []
    done = threading.Event()

    def on_batch(msg: Message) -> None:
        batch = items_of(msg)
        sizes.append(len(batch))
        readings.extend(batch)
        if len(readings) == 120:
            done.set()

    with MQTTClient.from_env(client_id="example-batch-sink") as sink, \
            MQTTClient.from_env(client_id="example-batch-source") as source:
        sink.subscribe("sensors/imu/batch", on_batch, qos=1)
        with BatchingPublisher(source, "sensors/imu/batch", "sensors.imu.batch",
                               max_items=50, max_delay=10.0) as batcher:
            for n in range(120):
                batcher.add({"n": n, "pitch": round(n * 0.1, 1)})
        # leaving the block flushed the last 20
        if not done.wait(10):
            raise SystemExit(f"only {len(readings)} readings arrived")
    in_order = [r["n"] for r in readings] == list(range(120))
    print(f"{len(sizes)} messages carried {len(readings)} readings: sizes {sizes},"
          f" in order: {in_order}")


if __name__ == "__main__":
    main()
