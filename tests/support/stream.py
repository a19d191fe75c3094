"""A steady stream of numbered QoS 1 events on its own thread, for the fault-injection tests."""

from __future__ import annotations

import threading
import time

from tars_mqtt import MQTTClient, PublishError, PublishHandle

__all__ = ["Stream"]


class Stream:
    """Publishes ``total`` events ``{"n": 0..total-1}`` at ``rate`` per second.

    ``sent`` tells how far it is; a publish the client refused is kept in ``refused``
    (counted and reported, never hidden); ``halt`` ends it early.
    """

    def __init__(self, client: MQTTClient, topic: str, *, total: int, rate: float) -> None:
        self.client, self.topic = client, topic
        self.total, self.rate = total, rate
        self.handles: list[PublishHandle] = []
        self.refused: list[tuple[int, str]] = []
        self.sent = 0
        self.progress = threading.Condition()
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-stream", daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        for n in range(self.total):
            if self.halt.wait(max(0.0, began + n / self.rate - time.monotonic())):
                return
            try:
                self.handles.append(self.client.publish_event(self.topic, "test.seq", {"n": n}))
            except PublishError as exc:
                self.refused.append((n, str(exc)))
            with self.progress:
                self.sent = n + 1
                self.progress.notify_all()

    def wait_sent(self, count: int, timeout: float) -> bool:
        with self.progress:
            return self.progress.wait_for(lambda: self.sent >= count, timeout)
