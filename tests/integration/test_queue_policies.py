"""Each queue policy under a flood from a real broker, while a handler is held on a gate.

One worker, ``queue_size=5``: message 0 sits in the gated handler (it counts against
the bound), so 4 more fit; what happens to the rest is the policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tars_mqtt import Message, MQTTClient, PublishHandle
from tests.tars_mqtt.support import WAIT, Collector, wait_until

MakeClient = Callable[..., MQTTClient]
QUEUE = 5


def _flood(make_client: MakeClient, policy: str, count: int, qos: int, workers: int = 1,
           also: dict[str, Collector] | None = None
           ) -> tuple[MQTTClient, Collector, threading.Event]:
    """A receiver whose handler holds message 0, then ``count`` more published behind it.

    ``also`` subscribes more topics first (at QoS 1).
    """
    client = make_client(workers=workers, queue_size=QUEUE, queue_policy=policy,
                         enable_heartbeat=False)
    publisher = make_client(enable_heartbeat=False)
    gate = threading.Event()
    got = Collector(gate)
    for topic, handler in (also or {}).items():
        client.subscribe(topic, handler, qos=1)
    client.subscribe("flood/t", got, qos=qos)
    publisher.publish_event("flood/t", "test.n", {"n": 0}, qos=1).wait(WAIT)
    assert got.entered.wait(WAIT)
    handles: list[PublishHandle] = [
        publisher.publish_event("flood/t", "test.n", {"n": n}, qos=qos)
        for n in range(1, count + 1)
    ]
    for handle in handles:
        handle.wait(WAIT)
    return client, got, gate


@pytest.mark.parametrize("qos", [0, 1])
def test_drop_newest_keeps_the_first_and_counts_drops(make_client: MakeClient, qos: int) -> None:
    client, got, gate = _flood(make_client, "drop_newest", 60, qos)
    try:
        assert wait_until(lambda: client.stats().received == 61)
        stats = client.stats()
        assert (stats.dropped, stats.queue_depth) == (60 - (QUEUE - 1), QUEUE)
    finally:
        gate.set()
    assert got.wait_for(QUEUE)
    client.stop(WAIT)
    assert [m.data["n"] for m in got.messages] == [0, 1, 2, 3, 4]
    assert client.stats().dispatched == QUEUE


@pytest.mark.parametrize("qos", [0, 1])
def test_drop_oldest_keeps_the_last_and_counts_drops(make_client: MakeClient, qos: int) -> None:
    client, got, gate = _flood(make_client, "drop_oldest", 60, qos)
    try:
        assert wait_until(lambda: client.stats().received == 61)
        stats = client.stats()
        assert (stats.dropped, stats.queue_depth) == (60 - (QUEUE - 1), QUEUE)
    finally:
        gate.set()
    assert got.wait_for(QUEUE)
    client.stop(WAIT)
    # message 0 was already in the handler: only waiting messages can be dropped
    assert [m.data["n"] for m in got.messages] == [0, 57, 58, 59, 60]


def test_block_holds_the_broker_back_and_loses_nothing(make_client: MakeClient) -> None:
    """``block`` withholds acks: the broker sends no more than the receive window (the queue's
    size), keeps the rest, and the network thread stays free for QoS 0 traffic."""
    probe = Collector()  # a second worker is free to run it
    client, got, gate = _flood(make_client, "block", 60, qos=1, workers=2,
                               also={"flood/probe": probe})
    try:
        assert client.config.receive_window == QUEUE
        make_client(enable_heartbeat=False).publish("flood/probe", b"x", qos=0).wait(WAIT)
        assert probe.wait_for(1), "the network thread stopped reading"
        stats = client.stats()
        assert (stats.received, stats.queue_depth, stats.dropped) == (QUEUE + 1, QUEUE, 0)
        assert client.is_connected and client.liveness_problem() is None
    finally:
        gate.set()
    # ...and once the handler moves, everything arrives, in order, nothing dropped.
    assert got.wait_for(61)
    assert [m.data["n"] for m in got.messages] == list(range(61))
    assert client.stats().dropped == 0


def test_drops_are_counted_across_subscriptions(make_client: MakeClient) -> None:
    """One bound for all mailboxes: a flood on one topic also costs the others room."""
    quiet = Collector()
    client, got, gate = _flood(make_client, "drop_newest", 20, qos=1, workers=2,
                               also={"flood/quiet": quiet})
    try:
        assert wait_until(lambda: client.stats().received == 21)
        make_client(enable_heartbeat=False).publish("flood/quiet", b"q", qos=1).wait(WAIT)
        assert wait_until(lambda: client.stats().received == 22)
        assert client.stats().dropped == 20 - (QUEUE - 1) + 1
    finally:
        gate.set()
    assert got.wait_for(QUEUE)
    client.stop(WAIT)
    assert quiet.messages == []


def test_block_slows_a_qos0_flood_down_instead_of_dropping_it(make_client: MakeClient) -> None:
    """A handler slower than the publisher, but moving: while the queue is full the network
    thread reads nothing, TCP holds the broker back, and every QoS 0 message is handled."""
    client = make_client(workers=1, queue_size=QUEUE, queue_policy="block",
                         enable_heartbeat=False)
    publisher = make_client(enable_heartbeat=False)
    got = Collector()

    def slow(msg: Message) -> None:
        time.sleep(0.001)  # a millisecond of work a message: ~300 ms for the flood
        got(msg)

    client.subscribe("flood/slow", slow, qos=0)
    handles = [publisher.publish_event("flood/slow", "test.n", {"n": n}, qos=0)
               for n in range(300)]
    for handle in handles:
        handle.wait(WAIT)
    assert got.wait_for(300), f"handled {len(got.messages)}, stats {client.stats()}"
    assert [m.data["n"] for m in got.messages] == list(range(300))
    assert client.stats().dropped == 0


def test_block_reads_on_through_a_long_stall_and_counts_qos0_drops(
        make_client: MakeClient) -> None:
    """A handler stalled far longer than one hold of the reads: the network thread reads
    on (keepalive, watchdog), and QoS 0 beyond the queue plus the window is dropped."""
    client, got, gate = _flood(make_client, "block", 60, qos=0)
    try:
        assert wait_until(lambda: client.stats().received == 61)
        stats = client.stats()
        room = QUEUE + client.config.receive_window
        assert (stats.dropped, stats.queue_depth) == (61 - room, room)
        assert client.is_connected
    finally:
        gate.set()
    assert got.wait_for(room)
    assert [m.data["n"] for m in got.messages] == list(range(room))
