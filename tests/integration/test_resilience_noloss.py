"""Fault injection, part 2: a steady QoS 1 stream through three broker restarts loses nothing.

Broker persistence plus persistent sessions on both ends: messages the broker acked
are stored with the absent subscriber's session, in-flight ones are re-sent by paho
(DUP), and the subscriber's dedup drops the copies. "Lost" means acknowledged to the
publisher yet never handled.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tars_mqtt import Message, MQTTClient, MQTTConfig, PublishError
from tars_mqtt.testing import Broker
from tests.support import ClientGroup, wait_until
from tests.support.stream import Stream

RATE = 200  # messages per second
TOTAL = 1200  # six seconds of traffic
RESTART_AT = (240, 520, 800)  # restart the broker once the stream has reached these numbers


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_qos1_stream_through_three_broker_restarts_loses_nothing(
        tmp_path: Path, make_config: Callable[..., MQTTConfig]) -> None:
    broker = Broker(tmp_path / "persistent", persistence=True).start()
    seen: Counter[int] = Counter()
    order: list[int] = []  # first arrivals, to report (not assert) reordering
    seen_lock = threading.Lock()
    all_seen = threading.Condition(seen_lock)

    def on_message(msg: Message) -> None:
        with all_seen:
            n = int(msg.data["n"])
            if not seen[n]:
                order.append(n)
            seen[n] += 1
            all_seen.notify_all()

    stream: Stream | None = None
    try:
        with ClientGroup() as group:
            session = {"clean_start": False, "session_expiry": 300}
            sub = group.add(MQTTClient(make_config(url=broker.url, dedupe_ttl=300,
                                                   dedupe_max_entries=100_000, **session)))
            sub.subscribe("noloss/stream", on_message, qos=1)
            sub.start(timeout=10)
            pub = group.add(MQTTClient(make_config(url=broker.url, offline_queue=10_000,
                                                   **session))).start(timeout=10)
            stream = Stream(pub, "noloss/stream", total=TOTAL, rate=RATE)
            stream.thread.start()

            for restart, at in enumerate(RESTART_AT, start=1):
                assert stream.wait_sent(at, 30), f"the stream stalled before message {at}"
                broker.stop()  # SIGTERM: mosquitto writes its persistence file on the way out
                broker.start()
                assert wait_until(lambda r=restart: pub.stats().reconnects >= r
                                  and sub.stats().reconnects >= r, 20), \
                    f"clients did not come back after restart {restart}"
            stream.thread.join(30)
            assert not stream.thread.is_alive(), "the stream never finished"

            acked: set[int] = set()
            failed: list[str] = []
            deadline = time.monotonic() + 20
            for handle, n in zip(stream.handles, range(TOTAL), strict=False):
                try:
                    handle.wait(max(0.1, deadline - time.monotonic()))
                    acked.add(n)
                except PublishError as exc:
                    failed.append(f"{n}: {exc}")
            with all_seen:
                all_seen.wait_for(lambda: acked <= set(seen), 20)
                received = dict(seen)
            lost = sorted(acked - set(received))
            twice = sorted(n for n, count in received.items() if count > 1)
            stats = sub.stats()
            behind = sum(1 for a, b in zip(order, order[1:], strict=False) if b < a)
            print(f"\nno-loss: sent {stream.sent}, acked {len(acked)}, received {len(received)}"
                  f" unique, lost {len(lost)}, duplicates removed by dedup {stats.duplicates},"
                  f" handled twice {len(twice)}, refused {len(stream.refused)},"
                  f" arrived after a later number {behind};"
                  f" reconnects pub {pub.stats().reconnects} sub {stats.reconnects}")
            assert not stream.refused, stream.refused[:3]
            assert not failed, failed[:3]
            assert len(acked) == TOTAL
            assert lost == [], f"{len(lost)} acknowledged messages never arrived: {lost[:20]}"
            assert twice == [], f"dedup let copies through: {twice[:20]}"
            assert set(received) <= set(range(TOTAL))
    finally:
        if stream is not None:
            stream.halt.set()
        broker.stop()
