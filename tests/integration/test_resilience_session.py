"""Persistent sessions and deduplication: what a client that was away gets, and only once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tars_mqtt import Envelope, MQTTClient, MQTTConfig
from tests.support import ClientGroup, Inbox

MakeClient = Callable[..., MQTTClient]
MakeConfig = Callable[..., MQTTConfig]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("protocol", "clean_start", "expected"), [
    ("5", False, ["away/q1", "away/q2"]),
    ("3.1.1", False, ["away/q1", "away/q2"]),
    ("5", True, []),  # the control: without a kept session nothing waits for the client
])
def test_client_away_gets_its_qos1_and_qos2_messages_on_return(
        make_config: MakeConfig, make_client: MakeClient,
        protocol: str, clean_start: bool, expected: list[str]) -> None:
    config = make_config(protocol=protocol, clean_start=clean_start,
                         session_expiry=0 if clean_start else 60)
    publisher = make_client()
    with ClientGroup() as group:
        first = group.add(MQTTClient(config))
        first.subscribe("away/#", Inbox(), qos=2)
        first.start(timeout=10)
        first.stop()  # a clean DISCONNECT: the broker keeps the session for session_expiry

        for qos in (0, 1, 2):
            publisher.publish_event(f"away/q{qos}", "test.away", {"qos": qos}, qos=qos).wait(5)

        inbox = Inbox()
        back = group.add(MQTTClient(config))  # same client id: the same session
        back.subscribe("away/#", inbox, qos=2)
        back.start(timeout=10)
        # Stored messages are sent before one published now; QoS 2 reaches the handler
        # only after its PUBREL, so the order between them is not fixed, the set is.
        publisher.publish_event("away/probe", "test.away", {"qos": 1}, qos=1).wait(5)
        wanted = {*expected, "away/probe"}
        assert inbox.wait_for(lambda msgs: {m.topic for m in msgs} >= wanted, 10), \
            f"got only {[m.topic for m in inbox.messages]}"
        topics = sorted(m.topic for m in inbox.messages)
        print(f"\nMQTT {protocol}, clean_start={clean_start}: got {topics}")
        assert topics == sorted(wanted), "QoS 0 kept for an absent client, or a copy"
        assert {m.topic: m.qos for m in inbox.messages if m.topic != "away/probe"} == \
            {t: int(t[-1]) for t in expected}


def _twice(publisher: MQTTClient, topic: str, envelope: Envelope) -> None:
    """The same envelope twice, byte for byte: what a QoS 1 redelivery looks like."""
    for _ in range(2):
        publisher.publish(topic, envelope.encode(), qos=1).wait(5)


@pytest.mark.timeout(30)
def test_dedup_hands_a_redelivered_envelope_to_handlers_once(make_client: MakeClient) -> None:
    client = make_client(start=False, dedupe_ttl=30)
    inbox, overlapping = Inbox(), Inbox()
    client.subscribe("dup/topic", inbox, qos=1)
    client.subscribe("dup/+", overlapping, qos=1)  # its own subscription: its own copy
    client.start(timeout=10)
    publisher = make_client()
    _twice(publisher, "dup/topic", Envelope(type="test.dup", source="test", data={"n": 1}))
    publisher.publish_event("dup/topic", "test.dup", {"n": 2}).wait(5)
    # Per-subscription order: once n=2 is handled, both copies of n=1 have been decided.
    for box in (inbox, overlapping):
        assert box.wait_for(lambda msgs: 2 in [m.data["n"] for m in msgs], 5)
        assert box.numbers() == [1, 2]
    assert client.stats().duplicates == 2  # one copy dropped on each subscription


@pytest.mark.timeout(30)
def test_without_dedup_both_copies_reach_the_handler(make_client: MakeClient) -> None:
    client = make_client(start=False)  # dedupe_ttl 0: off, the default
    inbox = Inbox()
    client.subscribe("dup/off", inbox, qos=1)
    client.start(timeout=10)
    _twice(make_client(), "dup/off", Envelope(type="test.dup", source="test", data={"n": 1}))
    assert inbox.wait_count(2, 5)
    assert inbox.numbers() == [1, 1] and client.stats().duplicates == 0


@pytest.mark.timeout(30)
def test_dedup_memory_is_bounded_by_max_entries(make_client: MakeClient) -> None:
    client = make_client(start=False, dedupe_ttl=30, dedupe_max_entries=2)
    inbox = Inbox()
    client.subscribe("dup/bounded", inbox, qos=1)
    client.start(timeout=10)
    publisher = make_client()
    envelopes = [Envelope(type="test.dup", source="test", data={"n": n}) for n in range(3)]
    for envelope in [*envelopes, envelopes[2], envelopes[0]]:
        publisher.publish("dup/bounded", envelope.encode(), qos=1).wait(5)
    assert inbox.wait_count(4, 5)
    # n=2 was still remembered; n=0 had been pushed out by n=1 and n=2, so it passes again.
    assert inbox.numbers() == [0, 1, 2, 0]
    assert client.stats().duplicates == 1


@pytest.mark.timeout(60)
def test_a_burst_for_an_absent_subscriber_is_kept_whole(
        make_config: MakeConfig, make_client: MakeClient) -> None:
    """The test broker keeps every QoS 1 message for a session that is away: mosquitto's
    default (1000 queued per client) silently discarded all beyond the first thousand."""
    total = 3000
    config = make_config(session_expiry=60, enable_heartbeat=False)
    publisher = make_client(enable_heartbeat=False)
    with ClientGroup() as group:
        away = group.add(MQTTClient(config))
        away.subscribe("burst/t", Inbox(), qos=1)
        away.start(timeout=10)
        away.stop()
        handles = [publisher.publish_event("burst/t", "test.n", {"n": n}) for n in range(total)]
        for handle in handles:
            handle.wait(10)  # acked by the broker, every one
        inbox = Inbox()
        back = group.add(MQTTClient(config))
        back.subscribe("burst/t", inbox, qos=1)
        back.start(timeout=10)
        assert inbox.wait_count(total, 30), f"{len(inbox.messages)} of {total} kept"
        assert sorted(inbox.numbers()) == list(range(total))
