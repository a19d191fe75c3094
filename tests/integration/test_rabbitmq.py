"""The client's core scenarios on RabbitMQ's MQTT plugin (a clustered broker), in MQTT 3.1.1.

One RabbitMQ node serves the whole module (its first boot takes ~9 s). Where RabbitMQ and
mosquitto differ, the test runs on both and states each broker's answer, so
docs/brokers.md lists differences that were seen, not assumed.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tars_mqtt import ConnectError, MQTTClient, runner
from tars_mqtt.testing import Broker
from tests.support import Inbox, wait_until
from tests.support.rabbitmq import RabbitMQ

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

Connect = Callable[..., MQTTClient]


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    node = RabbitMQ(tmp_path_factory.mktemp("rabbitmq")).start()
    yield node
    node.close()


@pytest.fixture(params=["mosquitto", "rabbitmq"])
def url(request: pytest.FixtureRequest) -> str:
    """The same test on each broker: mosquitto per test, the module's RabbitMQ node."""
    fixture = "broker" if request.param == "mosquitto" else "rabbit"
    return str(request.getfixturevalue(fixture).url)


@pytest.fixture
def which(url: str, request: pytest.FixtureRequest) -> str:
    """``mosquitto`` or ``rabbitmq``: which broker ``url`` is."""
    return str(request.node.callspec.params["url"])


@pytest.fixture
def connect(make_client: Callable[..., MQTTClient]) -> Connect:
    """``connect(url, start=True, **fields)``: an MQTT 3.1.1 client, stopped after the test.

    Client ids are the test's name, which has no '.': RabbitMQ reads one in a topic (ids go
    into topics) as a level separator.
    """
    def make(url: str, start: bool = True, **fields: Any) -> MQTTClient:
        fields.setdefault("protocol", "3.1.1")
        return make_client(start=start, url=url, **fields)
    return make


def _prefix() -> str:
    """A topic prefix of this test alone (the module's node keeps retained messages)."""
    return f"rmq-{uuid.uuid4().hex[:8]}"


# The core scenarios, on RabbitMQ -------------------------------------------------------
def test_qos0_and_qos1_arrive_complete_and_in_order(rabbit: RabbitMQ, connect: Connect) -> None:
    top = _prefix()
    at_least_once, at_most_once = Inbox(), Inbox()
    subscriber = connect(rabbit.url)
    subscriber.subscribe(f"{top}/q1/+", at_least_once, qos=1)
    subscriber.subscribe(f"{top}/q0", at_most_once, qos=0)
    publisher = connect(rabbit.url)
    handles = [publisher.publish_event(f"{top}/q1/n", "test.n", {"n": n}, qos=1)
               for n in range(50)]
    for n in range(50):
        publisher.publish_event(f"{top}/q0", "test.n", {"n": n}, qos=0)
    for handle in handles:
        handle.wait(10)  # PUBACK: the broker has it
    assert at_least_once.wait_count(50, 10), f"QoS 1: only {len(at_least_once.messages)}"
    assert at_most_once.wait_count(50, 10), f"QoS 0: only {len(at_most_once.messages)}"
    assert at_least_once.numbers() == list(range(50))
    assert at_most_once.numbers() == list(range(50))  # loopback: nothing lost at QoS 0
    assert {m.qos for m in at_least_once.messages} == {1}
    assert {m.qos for m in at_most_once.messages} == {0}
    assert publisher.stats().published >= 100


def test_will_turns_a_lost_client_offline_and_a_clean_stop_does_not(
        rabbit: RabbitMQ, connect: Connect) -> None:
    lost = connect(rabbit.url)
    health = Inbox()
    connect(rabbit.url).subscribe(f"system/health/{lost.config.client_id}", health, qos=1)
    assert health.wait_event("ready", 10), health.events()

    lost.paho.socket().shutdown(socket.SHUT_RDWR)  # the link dies without a DISCONNECT
    assert health.wait_event("reconnected", 15), f"no will and return: {health.events()}"
    events = health.events()
    assert "offline" in events and events.index("offline") < events.index("reconnected")
    offline = health.messages[events.index("offline")]
    assert offline.data == {"ok": False, "event": "offline"} and offline.qos == 1

    lost.stop()
    assert health.wait_event("shutdown", 10)
    assert _retained_event(connect, rabbit.url, lost.config.client_id) == "shutdown"
    assert health.events().count("offline") == 1  # a clean stop sent no will


def _retained_event(connect: Connect, url: str, client_id: str) -> str:
    """What a client starting now reads on ``system/health/{client_id}`` (exact topic)."""
    inbox = Inbox()
    connect(url).subscribe(f"system/health/{client_id}", inbox, qos=1)
    assert inbox.wait_count(1, 10), "no retained health"
    assert inbox.messages[0].retain
    return inbox.events()[0]


def test_persistent_session_keeps_qos1_messages_for_a_client_away(
        rabbit: RabbitMQ, connect: Connect) -> None:
    top = _prefix()
    client_id = f"away-{top}"
    first = connect(rabbit.url, start=False, client_id=client_id, clean_start=False)
    first.subscribe(f"{top}/#", Inbox(), qos=1)
    first.start(timeout=10)
    first.stop()  # a clean DISCONNECT: under 3.1.1 the session stays, without expiry

    publisher = connect(rabbit.url)
    for n in range(5):
        publisher.publish_event(f"{top}/n", "test.n", {"n": n}, qos=1).wait(5)

    inbox = Inbox()
    back = connect(rabbit.url, start=False, client_id=client_id, clean_start=False)
    back.subscribe(f"{top}/#", inbox, qos=1)  # before start: the stored ones find a handler
    back.start(timeout=10)
    publisher.publish_event(f"{top}/n", "test.n", {"n": 5}, qos=1).wait(5)
    assert inbox.wait_count(6, 10), f"got only {inbox.numbers()}"
    assert inbox.numbers() == list(range(6))


def test_reconnects_after_a_broker_restart_with_nothing_lost(
        rabbit: RabbitMQ, connect: Connect) -> None:
    top = _prefix()
    inbox = Inbox()
    subscriber = connect(rabbit.url, start=False, clean_start=False)  # its queue is durable
    subscriber.subscribe(f"{top}/n", inbox, qos=1)
    subscriber.start(timeout=10)
    publisher = connect(rabbit.url)
    publisher.publish_event(f"{top}/n", "test.n", {"n": 0}, qos=1).wait(5)
    assert inbox.wait_count(1, 10)

    rabbit.stop()
    assert wait_until(lambda: not publisher.is_connected and not subscriber.is_connected, 10)
    for n in range(1, 6):  # while the broker is away: the offline queue holds them
        publisher.publish_event(f"{top}/n", "test.n", {"n": n}, qos=1)
    assert publisher.stats().offline_queued == 5
    rabbit.start()

    assert inbox.wait_count(6, 20), f"after the restart only {inbox.numbers()}"
    assert inbox.numbers() == list(range(6))
    assert subscriber.stats().reconnects >= 1 and publisher.stats().reconnects >= 1
    assert _retained_event(connect, rabbit.url, subscriber.config.client_id) == "reconnected"


def test_request_reply(rabbit: RabbitMQ, connect: Connect) -> None:
    top = _prefix()
    answerer = connect(rabbit.url, start=False)
    answerer.subscribe(f"{top}/ask", lambda msg: answerer.reply(
        msg, "test.answer", {"twice": msg.data["n"] * 2}), qos=1)
    answerer.start(timeout=10)
    asker = connect(rabbit.url)
    for n in range(5):
        answer = asker.request(f"{top}/ask", "test.ask", {"n": n}, timeout=10)
        assert answer.data == {"twice": n * 2}
    named = asker.request(f"{top}/ask", "test.ask", {"n": 21}, timeout=10,
                          reply_topic=f"{top}/answers")
    assert named.topic == f"{top}/answers" and named.data == {"twice": 42}
    assert asker.stats().late_replies == 0


def test_bad_credentials_are_told_apart_from_an_outage(
        rabbit: RabbitMQ, connect: Connect) -> None:
    client = connect(rabbit.url, start=False, username="nobody", password="wrong")
    with pytest.raises(ConnectError) as caught:
        client.start(timeout=10)
    assert caught.value.reason == "bad_credentials", caught.value
    assert "wrong" not in str(caught.value)


def test_mqtt5_on_a_3_1_1_broker_is_refused_by_name_not_waited_out(
        rabbit: RabbitMQ, connect: Connect) -> None:
    client = connect(rabbit.url, start=False, protocol="5")
    with pytest.raises(ConnectError) as caught:
        client.start(timeout=30)  # a hang would end in reason "timeout" after 30 s
    assert caught.value.reason == "protocol", caught.value
    assert runner.is_fatal(caught.value)  # a service exits 78 instead of retrying
    assert "MQTT_PROTOCOL=3.1.1" in str(caught.value)
    assert f"127.0.0.1:{rabbit.mqtt_port}" in str(caught.value)


def test_failing_over_onto_a_3_1_1_only_broker_stops_with_the_reason(
        rabbit: RabbitMQ, broker: Broker, connect: Connect) -> None:
    client = connect(f"{broker.url},{rabbit.url}", protocol="5")
    assert client.stats().broker == broker.url
    broker.kill()
    assert wait_until(lambda: client.fatal_error is not None, 20), "it kept retrying"
    assert client.fatal_error is not None and client.fatal_error.reason == "protocol"
    assert str(client.fatal_error) in str(client.liveness_problem())


# Where the brokers differ: each broker's answer --------------------------------------
def test_qos2_is_served_as_qos1_by_rabbitmq(url: str, which: str, connect: Connect) -> None:
    top = _prefix()
    inbox = Inbox()
    connect(url).subscribe(f"{top}/q2", inbox, qos=2)
    connect(url).publish_event(f"{top}/q2", "test.n", {"n": 1}, qos=2).wait(5)  # acked either way
    assert inbox.wait_count(1, 10)
    assert inbox.messages[0].qos == {"mosquitto": 2, "rabbitmq": 1}[which]


def test_retained_messages_reach_exact_topic_subscribers_only_on_rabbitmq(
        url: str, which: str, connect: Connect) -> None:
    top = _prefix()
    publisher = connect(url)
    publisher.publish_event(f"{top}/state/a", "test.state", {"v": 1}, qos=1, retain=True).wait(5)

    exact = Inbox()
    connect(url).subscribe(f"{top}/state/a", exact, qos=1)
    assert exact.wait_count(1, 10), "an exact-topic subscriber got no retained message"
    assert exact.messages[0].retain and exact.messages[0].data == {"v": 1}

    wild = Inbox()
    connect(url).subscribe(f"{top}/state/+", wild, qos=1)  # SUBACK waited for
    # A live message after the SUBACK: a retained one would have been sent before it.
    publisher.publish_event(f"{top}/state/marker", "test.state", {"v": 0}, qos=1).wait(5)
    assert wild.wait_for(lambda msgs: any(m.topic.endswith("marker") for m in msgs), 10)
    got_retained = [m.topic for m in wild.messages if m.retain]
    assert got_retained == {"mosquitto": [f"{top}/state/a"], "rabbitmq": []}[which]

    publisher.publish(f"{top}/state/a", b"", qos=1, retain=True).wait(5)  # clears it on both
    later = Inbox()
    connect(url).subscribe(f"{top}/state/a", later, qos=1)
    publisher.publish_event(f"{top}/state/a", "test.state", {"v": 2}, qos=1).wait(5)
    assert later.wait_count(1, 10)
    assert later.messages[0].data == {"v": 2} and not later.messages[0].retain


def test_overlapping_filters_at_two_qos_get_two_copies_on_rabbitmq(
        url: str, which: str, connect: Connect) -> None:
    top = _prefix()
    copies = {"mosquitto": 1, "rabbitmq": 2}[which]  # RabbitMQ: one queue per QoS level
    raw_wide, raw_narrow, deduped = Inbox(), Inbox(), Inbox()
    plain = connect(url, start=False)
    plain.subscribe(f"{top}/#", raw_wide, qos=1)
    plain.subscribe(f"{top}/+", raw_narrow, qos=0)
    plain.start(timeout=10)
    careful = connect(url, start=False, dedupe_ttl=60)
    careful.subscribe(f"{top}/#", deduped, qos=1)
    careful.subscribe(f"{top}/+", Inbox(), qos=0)
    careful.start(timeout=10)

    publisher = connect(url)
    publisher.publish_event(f"{top}/a", "test.n", {"n": 1}, qos=1).wait(5)
    publisher.publish_event(f"{top}/a", "test.n", {"n": 2}, qos=1).wait(5)  # the marker
    for inbox in (raw_wide, raw_narrow):  # per queue in order: n=1 copies precede n=2's
        assert inbox.wait_for(lambda msgs: _count(msgs, 2) >= copies, 10)
        assert _count(inbox.messages, 1) == copies
    assert deduped.wait_for(lambda msgs: _count(msgs, 2) >= 1, 10)
    assert deduped.numbers() == [1, 2]  # MQTT_DEDUPE_TTL: each handler sees one


def _count(messages: list[Any], n: int) -> int:
    return sum(1 for m in messages if m.data == {"n": n})


def test_a_dot_in_a_topic_becomes_a_level_on_rabbitmq(
        url: str, which: str, connect: Connect) -> None:
    top = _prefix()
    inbox = Inbox()
    connect(url).subscribe(f"{top}/#", inbox, qos=1)
    connect(url).publish_event(f"{top}/lamp.1/state", "test.n", {"n": 1}, qos=1).wait(5)
    assert inbox.wait_count(1, 10)
    assert inbox.messages[0].topic == {"mosquitto": f"{top}/lamp.1/state",
                                       "rabbitmq": f"{top}/lamp/1/state"}[which]


def test_dollar_topics_never_reach_a_leading_wildcard_handler(
        url: str, connect: Connect) -> None:
    """RabbitMQ sends ``$`` topics to ``#`` subscribers (MQTT forbids it); the client drops
    them before any handler, as it must."""
    top = _prefix()
    everything, dollars = Inbox(), Inbox()
    client = connect(url, start=False)
    client.subscribe("#", everything, qos=1, raw=True)
    client.subscribe(f"${top}/#", dollars, qos=1, raw=True)
    client.start(timeout=10)
    publisher = connect(url)
    publisher.publish(f"${top}/x", b"dollar", qos=1).wait(5)
    publisher.publish(f"{top}/marker", b"plain", qos=1).wait(5)
    assert everything.wait_for(lambda msgs: any(m.topic == f"{top}/marker" for m in msgs), 10)
    assert dollars.wait_count(1, 10) and dollars.messages[0].payload == b"dollar"
    assert not [m.topic for m in everything.messages if m.topic.startswith("$")]


def test_the_fixture_node_listens_on_loopback_only(rabbit: RabbitMQ) -> None:
    """AMQP, MQTT, distribution and epmd: every listener of the test node is loopback."""
    assert rabbit.running and rabbit.workdir in rabbit.log_path.parents
    for port in (rabbit.amqp_port, rabbit.mqtt_port, rabbit.dist_port, rabbit.epmd.port):
        assert _listening_on(port) <= {"127.0.0.1", "::1"}, f"port {port}: {_listening_on(port)}"
        assert _listening_on(port), f"nothing listens on {port}"


def _listening_on(port: int) -> set[str]:
    """The addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, raw))
    return found
