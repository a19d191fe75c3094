"""One failover run: a QoS 1 stream between two clients that both list two brokers.

The test kills the first broker mid-stream; :meth:`FailoverRun.finish` then checks what
must hold whatever the timing (every publish acknowledged by one broker or the other,
both clients on the second broker, nothing lost once the subscriber is proven
resubscribed there) and returns the figures: lost, duplicated, time to fail over.
"Lost" means acknowledged to the publisher yet never handled.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tars_mqtt import Message, MQTTClient, MQTTConfig, PublishError
from tests.support import ClientGroup, Inbox, wait_until
from tests.support.stream import Stream

__all__ = ["KILL_AT", "RATE", "TOTAL", "FailoverResult", "FailoverRun"]

RATE = 200  # QoS 1 messages per second
TOTAL = 800  # four seconds of traffic
KILL_AT = 200  # the test kills the first broker once this many were published


@dataclass(frozen=True)
class FailoverResult:
    lost: list[int]
    duplicated: list[int]
    subscriber_back: float  # seconds from the kill to connected on the second broker
    publisher_back: float
    ready_at: int  # the first number published once the subscriber was proven back


class FailoverRun:
    """Two clients with ``MQTT_URL=first,second`` exchanging ``TOTAL`` QoS 1 messages.

    ``fields`` go into both clients' configs (protocol, session); ``publisher_delay`` is
    the publisher's ``reconnect_min_delay`` (the subscriber's is 0.1 s).
    """

    def __init__(self, first: str, second: str, *, publisher_delay: float = 0.1,
                 **fields: Any) -> None:
        self.first, self.second = first, second
        self.publisher_delay = publisher_delay
        self.fields = fields
        self.topic = f"failover/{uuid.uuid4().hex[:8]}"
        self.group = ClientGroup()
        self._seen: Counter[int] = Counter()
        self._seen_lock = threading.Condition()
        self._probes = Inbox()
        self.killed_at = 0.0

    def __enter__(self) -> FailoverRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.group.__exit__(kind, exc, tb)

    def connect(self, url: str, **fields: Any) -> MQTTClient:
        values: dict[str, Any] = {"reconnect_min_delay": 0.1, "reconnect_max_delay": 0.2,
                                  **self.fields, **fields}
        values.setdefault("client_id", f"failover-{uuid.uuid4().hex[:10]}")
        return self.group.add(MQTTClient(MQTTConfig(url=url, **values)))

    def wait_linked(self) -> None:
        """Until a message published on the first broker reaches a subscriber on the second."""
        arrived = Inbox()
        listener = self.connect(self.second, clean_start=True)
        listener.subscribe(f"{self.topic}/link", arrived, qos=1)
        listener.start(timeout=10)
        sender = self.connect(self.first, clean_start=True).start(timeout=10)
        assert wait_until(lambda: sender.publish(f"{self.topic}/link", b"?", qos=1) is not None
                          and arrived.wait_count(1, 0.1), 15), "the brokers are not linked"

    def start_clients(self) -> None:
        both = f"{self.first},{self.second}"
        self.sub = self.connect(both)
        self.sub.subscribe(f"{self.topic}/n", self._on_message, qos=1)
        self.sub.subscribe(f"{self.topic}/probe", self._probes, qos=1)  # replayed after /n
        self.sub.start(timeout=10)
        self.pub = self.connect(both, offline_queue=TOTAL,
                                reconnect_min_delay=self.publisher_delay,
                                reconnect_max_delay=2 * self.publisher_delay).start(timeout=10)
        assert self.sub.stats().broker == self.first
        assert self.pub.stats().broker == self.first

    def _on_message(self, msg: Message) -> None:
        with self._seen_lock:
            self._seen[int(msg.data["n"])] += 1
            self._seen_lock.notify_all()

    def stream_until(self, count: int) -> None:
        """Start the stream and return once ``count`` messages were published."""
        self.stream = Stream(self.pub, f"{self.topic}/n", total=TOTAL, rate=RATE)
        self.stream.thread.start()
        assert self.stream.wait_sent(count, 20)

    def finish(self, label: str) -> FailoverResult:
        """After the kill: wait for the failover, let the stream end, count and check."""
        killed = time.monotonic()
        back: dict[str, float] = {}
        assert wait_until(lambda: self._moved(back, killed), 30, interval=0.001), \
            f"no failover to {self.second}: {back}"
        # The subscriber is proven resubscribed on the second broker once a probe sent
        # there arrives: everything published from then on must reach it.
        prober = self.connect(self.second, clean_start=True).start(timeout=10)
        assert wait_until(lambda: prober.publish(f"{self.topic}/probe", b"?", qos=1) is not None
                          and self._probes.wait_count(1, 0.05), 15), "subscriber never back"
        ready_at = self.stream.sent
        health = Inbox()  # its own health says where it is now
        prober.subscribe(f"system/health/{self.sub.config.client_id}", health, qos=1)
        assert health.wait_for(lambda msgs: any(
            m.data.get("event") == "reconnected" and m.data.get("broker") == self.second
            for m in msgs), 10), [m.data for m in health.messages]
        self.stream.thread.join(20)
        failed = []
        for n, handle in enumerate(self.stream.handles):
            try:
                handle.wait(10)
            except PublishError as exc:
                failed.append(f"{n}: {exc}")
        with self._seen_lock:
            self._seen_lock.wait_for(lambda: set(range(ready_at, TOTAL)) <= set(self._seen), 15)
            received = dict(self._seen)
        lost = sorted(set(range(TOTAL)) - set(received))
        twice = sorted(n for n, count in received.items() if count > 1)
        print(f"\nfailover ({label}): {TOTAL} QoS 1 messages at {RATE}/s, first broker"
              f" SIGKILLed after #{KILL_AT}; lost {len(lost)} {_runs(lost)}, duplicated"
              f" {len(twice)}; on the second broker after: subscriber {back['sub']:.3f} s,"
              f" publisher {back['pub']:.3f} s; subscriber proven back at #{ready_at}")
        assert not failed, failed[:3]
        assert not self.stream.refused and len(self.stream.handles) == TOTAL
        assert self.sub.stats().broker == self.second == self.pub.stats().broker
        assert not [n for n in lost if n >= ready_at], f"lost after the resubscribe: {lost}"
        assert set(received) <= set(range(TOTAL))
        return FailoverResult(lost, twice, back["sub"], back["pub"], ready_at)

    def _moved(self, back: dict[str, float], since: float) -> bool:
        """Note when each client is first seen on the second broker; True once both are."""
        for name, client in (("sub", self.sub), ("pub", self.pub)):
            if name not in back and client.is_connected and client.stats().broker == self.second:
                back[name] = time.monotonic() - since
        return len(back) == 2


def _runs(numbers: list[int]) -> str:
    """``[200-213, 230]``: a short picture of which numbers they were."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][-1] == n - 1:
            runs[-1] = [runs[-1][0], n]
        else:
            runs.append([n])
    return "[" + ", ".join("-".join(map(str, run)) for run in runs) + "]" if runs else ""
