"""MQTTClient against a real mosquitto: QoS, retain, wildcards, overlapping filters,
ordering with many workers, isolation of a slow handler, handler errors, publishing from
handlers and threads, acks, stats and the paho escape hatch."""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho
import pytest
from dataclasses_json import dataclass_json

from tars_mqtt import Envelope, Message, MQTTClient, MQTTConfig, PublishError, PublishHandle
from tars_mqtt.testing import Broker
from tests.tars_mqtt.support import WAIT, Collector, wait_until

MakeClient = Callable[..., MQTTClient]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_levels(make_client: MakeClient, qos: int, protocol: str) -> None:
    client = make_client(protocol=protocol)
    got = Collector()
    client.subscribe("qos/test", got, qos=2)
    handle = client.publish_event("qos/test", "test.qos", {"qos": qos}, qos=qos)
    handle.wait(WAIT)
    assert handle.done and handle.qos == qos and handle.mid is not None
    assert got.wait_for(1)
    msg = got.messages[0]
    assert (msg.topic, msg.qos, msg.retain, msg.data) == ("qos/test", qos, False, {"qos": qos})
    assert msg.envelope is not None and msg.envelope.type == "test.qos"


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_subscription_qos_caps_delivery(make_client: MakeClient, protocol: str) -> None:
    client = make_client(protocol=protocol)
    got = Collector()
    client.subscribe("qos/cap", got, qos=1)
    client.publish("qos/cap", b"x", qos=2).wait(WAIT)
    assert got.wait_for(1) and got.messages[0].qos == 1


def test_message_fields_for_events_and_raw_json(make_client: MakeClient) -> None:
    client = make_client()
    got = Collector()
    client.subscribe("fields/#", got, qos=1)
    client.publish_event("fields/event", "movement.status", {"event": "started"},
                         correlate="cmd-1").wait(WAIT)
    client.publish("fields/raw", {"plain": True}, qos=1).wait(WAIT)
    assert got.wait_for(2)
    event, raw = got.messages
    assert isinstance(event.payload, bytes) and event.envelope is not None
    assert (event.data, event.correlate) == ({"event": "started"}, "cmd-1")
    assert event.envelope.source == client.config.source and event.envelope.seq is not None
    assert (raw.envelope, raw.data, raw.payload) == (None, {"plain": True}, b'{"plain":true}')


@dataclass_json
@dataclass
class MoveCommand:
    action: str
    speed: float = 1.0


def test_publish_event_with_a_dataclass(make_client: MakeClient) -> None:
    client = make_client()
    got = Collector()
    client.subscribe("movement/command", got, qos=1)
    client.publish_event("movement/command", "movement.command",
                         MoveCommand("wave", 0.5)).wait(WAIT)
    assert got.wait_for(1)
    assert got.messages[0].data == {"action": "wave", "speed": 0.5}
    assert MoveCommand.from_dict(got.messages[0].data) == MoveCommand("wave", 0.5)  # type: ignore[attr-defined]


def test_retained_messages(make_client: MakeClient) -> None:
    publisher = make_client()
    live = Collector()
    publisher.subscribe("retain/state", live, qos=1)
    publisher.publish_event("retain/state", "system.state", {"state": "idle"}, qos=1,
                            retain=True).wait(WAIT)
    assert live.wait_for(1) and live.messages[0].retain is False  # live delivery

    late = make_client(start=False)
    stored = Collector()
    late.subscribe("retain/state", stored, qos=1)
    late.start(WAIT)
    assert stored.wait_for(1)
    assert stored.messages[0].retain is True and stored.messages[0].data == {"state": "idle"}

    publisher.publish("retain/state", b"", qos=1, retain=True).wait(WAIT)  # clear it
    fresh = make_client(start=False)
    nothing, marker = Collector(), Collector()
    fresh.subscribe("retain/state", nothing, qos=1)
    fresh.subscribe("retain/marker", marker, qos=1)
    fresh.start(WAIT)
    fresh.publish("retain/marker", b"m", qos=1).wait(WAIT)
    assert marker.wait_for(1)
    assert nothing.messages == []


def test_wildcards(make_client: MakeClient) -> None:
    client = make_client()
    plus, hash_, deep, end = Collector(), Collector(), Collector(), Collector()
    client.subscribe("wc/+/temp", plus, qos=1)
    client.subscribe("wc/#", hash_, qos=1)
    client.subscribe("wc/+/+/x", deep, qos=1)
    client.subscribe("wc-end", end, qos=1)
    topics = ["wc/a/temp", "wc/b/temp", "wc/a/hum", "wc/a/temp/more", "wc", "wc/a/b/x", "other"]
    for topic in topics:
        client.publish(topic, topic, qos=1).wait(WAIT)
    client.publish("wc-end", b"end", qos=1).wait(WAIT)
    assert end.wait_for(1)
    client.stop(WAIT)  # drains every queued delivery before we look
    assert plus.topics == ["wc/a/temp", "wc/b/temp"]
    assert hash_.topics == [t for t in topics if t == "wc" or t.startswith("wc/")]
    assert deep.topics == ["wc/a/b/x"]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_overlapping_filters_each_handler_once(make_client: MakeClient, protocol: str) -> None:
    """MQTT 5 gets one copy per matching subscription, 3.1.1 one copy; handlers see one."""
    client = make_client(protocol=protocol, enable_heartbeat=False)
    on_hash, on_plus, on_plus_again, on_exact, end = (Collector() for _ in range(5))
    client.subscribe("ov/#", on_hash, qos=1)
    client.subscribe("ov/+", on_plus, qos=1)
    client.subscribe("ov/+", on_plus_again, qos=1)  # same filter, second handler
    client.subscribe("ov/x", on_exact, qos=1)
    client.subscribe("ov-end", end, qos=1)
    client.publish("ov/x", b"1", qos=1).wait(WAIT)
    client.publish("ov/x", b"2", qos=1).wait(WAIT)
    client.publish("ov-end", b"end", qos=1).wait(WAIT)
    assert end.wait_for(1)
    copies = client.stats().received
    client.stop(WAIT)
    for got in (on_hash, on_plus, on_plus_again, on_exact):
        assert got.payloads == [b"1", b"2"]
    # The broker fact behind it: 3 subscriptions match, so 3 copies each under MQTT 5.
    assert copies == (2 * 3 + 1 if protocol == "5" else 2 + 1)


def test_an_overlap_added_later_keeps_each_handler_once_and_no_retained_resend(
        make_client: MakeClient) -> None:
    """v5 ids are added only when filters overlap: the first route is re-subscribed with an
    id (retain-handling 1), so its handler neither loses copies nor sees the retained again."""
    client = make_client(enable_heartbeat=False)
    client.publish("late/x", b"kept", qos=1, retain=True).wait(WAIT)
    on_plus, on_hash, end = Collector(), Collector(), Collector()
    client.subscribe("late/+", on_plus, qos=1)
    assert on_plus.wait_for(1)
    client.subscribe("late/#", on_hash, qos=1)
    assert on_hash.wait_for(1)  # a new subscription: it gets the retained message
    client.subscribe("late-end", end, qos=1)
    client.publish("late/x", b"live", qos=1).wait(WAIT)
    client.publish("late-end", b"end", qos=1).wait(WAIT)
    assert end.wait_for(1)
    client.publish("late/x", b"", qos=1, retain=True).wait(WAIT)  # clear it
    client.stop(WAIT)
    assert on_plus.payloads[:2] == [b"kept", b"live"]
    assert on_hash.payloads[:2] == [b"kept", b"live"]


def test_order_per_subscription_with_8_workers(make_client: MakeClient) -> None:
    client = make_client(workers=8)
    publisher = make_client()
    subs = [f"order/{i}" for i in range(4)]
    lock = threading.Lock()
    seen: dict[str, list[int]] = {topic: [] for topic in subs}
    threads: set[str] = set()
    done = threading.Event()
    per_topic = 150
    rng = random.Random(5)

    def make_handler(topic: str) -> Callable[[Message], None]:
        def handler(msg: Message) -> None:
            if rng.random() < 0.2:
                time.sleep(0.0005)  # uneven handler times, so a reorder would show
            with lock:
                seen[topic].append(msg.data["n"])
                threads.add(threading.current_thread().name)
                if sum(map(len, seen.values())) == per_topic * len(subs):
                    done.set()
        return handler

    for topic in subs:
        client.subscribe(topic, make_handler(topic), qos=1)
    handles: list[PublishHandle] = []
    for n in range(per_topic):
        for topic in subs:
            handles.append(publisher.publish_event(topic, "test.order", {"n": n}, qos=1))
    for handle in handles:
        handle.wait(WAIT)
    assert done.wait(WAIT)
    for topic in subs:
        assert seen[topic] == list(range(per_topic)), topic
    assert len(threads) > 1


def test_slow_handler_does_not_starve_another_subscription(make_client: MakeClient) -> None:
    client = make_client(workers=2)
    gate = threading.Event()
    slow, fast = Collector(gate), Collector()
    client.subscribe("slow/topic", slow, qos=1)
    client.subscribe("fast/topic", fast, qos=1)
    try:
        for n in range(5):
            client.publish("slow/topic", str(n), qos=1)
        assert slow.entered.wait(WAIT)
        for n in range(30):
            client.publish("fast/topic", str(n), qos=1)
        assert fast.wait_for(30), "fast subscription held up by the slow handler"
        assert slow.messages == []
    finally:
        gate.set()
    assert slow.wait_for(5)
    assert slow.payloads == [str(n).encode() for n in range(5)]
    assert fast.payloads == [str(n).encode() for n in range(30)]


def test_handler_exception_logged_counted_and_worker_lives(
        make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(workers=1)
    got = Collector()

    def handler(msg: Message) -> None:
        if msg.data["n"] % 2:
            raise ValueError(f"odd number {msg.data['n']}")
        got(msg)

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records
                if r.levelno == logging.ERROR and "errors/handler" in r.getMessage()]

    client.subscribe("errors/handler", handler, qos=1)
    with caplog.at_level(logging.ERROR, logger="tars_mqtt"):
        for n in range(6):
            client.publish_event("errors/handler", "test.n", {"n": n}, qos=1)
        assert got.wait_for(3)
        assert wait_until(lambda: len(failures()) == 3)  # logged with the topic
    assert [m.data["n"] for m in got.messages] == [0, 2, 4]
    assert client.stats().handler_errors == 3
    assert all(r.exc_info for r in failures()) and "odd number 1" in caplog.text
    assert client.liveness_problem() is None  # the one worker is still alive


def test_publish_and_wait_from_inside_a_handler(make_client: MakeClient) -> None:
    client = make_client(workers=2)
    pongs = Collector()
    acked: list[bool] = []
    ping_ids: list[str] = []

    def on_ping(msg: Message) -> None:
        assert msg.envelope is not None
        ping_ids.append(msg.envelope.id)
        handle = client.publish_event("handler/pong", "test.pong", {"n": msg.data["n"]},
                                      qos=1, correlate=msg.envelope.id)
        handle.wait(WAIT)  # the network thread is free to bring the ack back
        acked.append(handle.done)

    client.subscribe("handler/ping", on_ping, qos=1)
    client.subscribe("handler/pong", pongs, qos=1)
    pings = [client.publish_event("handler/ping", "test.ping", {"n": n}) for n in range(5)]
    assert pongs.wait_for(5)
    assert [m.data["n"] for m in pongs.messages] == list(range(5))
    assert [m.correlate for m in pongs.messages] == ping_ids
    assert wait_until(lambda: len(acked) == 5) and acked == [True] * 5
    assert all(p.done for p in pings)
    assert client.stats().handler_errors == 0


def test_publish_from_many_threads(make_client: MakeClient) -> None:
    client = make_client()
    got = Collector()
    client.subscribe("threads/#", got, qos=1)
    errors: list[BaseException] = []

    def publish_some(worker: int) -> None:
        try:
            handles = [client.publish_event(f"threads/{worker}", "test.n", {"n": n}, qos=1)
                       for n in range(40)]
            for handle in handles:
                handle.wait(WAIT)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=publish_some, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert got.wait_for(240)
    for worker in range(6):  # one publisher thread's messages keep their order
        ns = [m.data["n"] for m in got.messages if m.topic == f"threads/{worker}"]
        assert ns == list(range(40))


@pytest.mark.parametrize("qos", [1, 2])
def test_publish_handle_waits_for_the_brokers_ack(
        make_client: MakeClient, broker: Broker, qos: int) -> None:
    client = make_client(enable_heartbeat=False)
    assert broker.proc is not None
    os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker holds its ack
    try:
        handle = client.publish("ack/test", b"x", qos=qos)
        with pytest.raises(PublishError, match="no ack for publish to 'ack/test' within"):
            handle.wait(0.3)
        assert not handle.done
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    handle.wait(WAIT)
    assert handle.done


def test_stats_count_what_happened(make_client: MakeClient) -> None:
    client = make_client(enable_heartbeat=False)
    got = Collector()
    client.subscribe("stats/t", got, qos=1)
    before = client.stats().published
    for n in range(5):
        client.publish_event("stats/t", "test.n", {"n": n}, qos=1).wait(WAIT)
    assert got.wait_for(5)
    # a worker counts the run as dispatched just before it gives the queue slot back
    assert wait_until(lambda: client.stats().dispatched == 5 and client.stats().queue_depth == 0)
    stats = client.stats()
    assert stats.published - before == 5
    assert (stats.received, stats.dropped, stats.handler_errors, stats.decode_errors) == (
        5, 0, 0, 0)
    assert stats.queue_depth == 0 and stats.offline_queued == 0 and stats.reconnects == 0
    assert 0.0 < stats.handler_latency_p50 <= stats.handler_latency_p99


@pytest.mark.parametrize(("protocol", "paho_version", "log_tag"), [
    ("5", paho.MQTTv5, "p5"),
    ("3.1.1", paho.MQTTv311, "p2"),  # mosquitto logs its own enum: mqtt311 is 2
])
def test_protocol_and_paho_escape_hatch(make_client: MakeClient, broker: Broker,
                                        protocol: str, paho_version: int, log_tag: str) -> None:
    client = make_client(protocol=protocol)
    assert isinstance(client.paho, paho.Client)
    assert client.paho.protocol == paho_version and client.paho.is_connected()
    assert client.is_connected
    assert f"as {client.config.client_id} ({log_tag}," in broker.log()


def test_default_protocol_is_mqtt5(make_config: Callable[..., MQTTConfig]) -> None:
    assert MQTTClient(make_config()).paho.protocol == paho.MQTTv5


@pytest.mark.parametrize(("ttl", "expected"), [(60.0, 1), (0.0, 2)])
def test_dedupe_drops_a_repeated_envelope(make_client: MakeClient, ttl: float,
                                          expected: int) -> None:
    """The same envelope twice (a QoS 1 redelivery, a republish) reaches a handler once."""
    client = make_client(dedupe_ttl=ttl)
    got, end = Collector(), Collector()
    client.subscribe("dedupe/t", got, qos=1)
    client.subscribe("dedupe/end", end, qos=1)
    once = Envelope(type="test.once", source="elsewhere", data={"n": 1}).encode()
    client.publish("dedupe/t", once, qos=1).wait(WAIT)
    client.publish("dedupe/t", once, qos=1).wait(WAIT)
    client.publish_event("dedupe/t", "test.other", {"n": 2}).wait(WAIT)
    client.publish("dedupe/end", b"end", qos=1).wait(WAIT)
    assert end.wait_for(1) and got.wait_for(expected + 1)
    client.stop(WAIT)
    assert [m.data["n"] for m in got.messages] == [1] * expected + [2]
    assert client.stats().duplicates == 2 - expected


def test_threads_are_named(make_client: MakeClient) -> None:
    before = set(threading.enumerate())
    client = make_client(workers=3)
    names = sorted(t.name for t in set(threading.enumerate()) - before)
    assert [n for n in names if n.startswith("tars-mqtt-worker-")] == [
        "tars-mqtt-worker-0", "tars-mqtt-worker-1", "tars-mqtt-worker-2"]
    assert f"tars-mqtt-timer-{client.config.client_id}" in names


def test_decorator_form_and_unsubscribe(make_client: MakeClient) -> None:
    client = make_client()
    first, second, end = Collector(), Collector(), Collector()

    @client.subscribe("unsub/t", qos=1)
    def on_first(msg: Message) -> None:
        first(msg)

    sub = client.subscribe("unsub/t", second, qos=1)
    client.subscribe("unsub/end", end, qos=1)
    client.publish("unsub/t", b"1", qos=1).wait(WAIT)
    assert first.wait_for(1) and second.wait_for(1)
    client.unsubscribe(sub)  # one handler off; the filter stays for the other
    client.publish("unsub/t", b"2", qos=1).wait(WAIT)
    assert first.wait_for(2)
    client.unsubscribe("unsub/t")  # every handler on the filter off
    client.publish("unsub/t", b"3", qos=1).wait(WAIT)
    client.publish("unsub/end", b"end", qos=1).wait(WAIT)
    assert end.wait_for(1)
    client.stop(WAIT)
    assert (first.payloads, second.payloads) == ([b"1", b"2"], [b"1"])


def test_subscribe_from_inside_a_handler(make_client: MakeClient) -> None:
    client = make_client(workers=2)
    later = Collector()
    subscribed = threading.Event()

    def on_setup(msg: Message) -> None:
        client.subscribe("dynamic/later", later, qos=1)  # waits for the SUBACK
        subscribed.set()

    client.subscribe("dynamic/setup", on_setup, qos=1)
    client.publish("dynamic/setup", b"go", qos=1)
    assert subscribed.wait(WAIT)
    client.publish("dynamic/later", b"hello", qos=1).wait(WAIT)
    assert later.wait_for(1) and later.payloads == [b"hello"]


def test_a_message_no_subscription_takes_is_counted_and_acknowledged(
        make_client: MakeClient) -> None:
    """A filter the broker has for the client but no handler of it (subscribed behind the
    client's back here; in life one being removed while messages come): each message is
    counted in ``unrouted``, and acknowledged, so a receive window of 1 still moves on."""
    client = make_client(receive_maximum=1, enable_heartbeat=False)
    client.paho.subscribe("stray/#", qos=1)
    got = Collector()
    client.subscribe("kept/t", got, qos=1)  # SUBACKs come in order: stray/# is in place
    sender = make_client(enable_heartbeat=False)
    for n in range(3):
        sender.publish("stray/x", str(n).encode(), qos=1).wait(WAIT)
    sender.publish("kept/t", b"after", qos=1).wait(WAIT)
    assert got.wait_for(1) and got.topics == ["kept/t"]
    stats = client.stats()
    assert (stats.unrouted, stats.received, stats.dispatched) == (3, 1, 1)
