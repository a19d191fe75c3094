"""Payloads that are no envelope reach handlers raw, are counted, and crash nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import ujson

from tars_mqtt import Envelope, Message, MQTTClient
from tests.tars_mqtt.support import WAIT, Collector, wait_until

MakeClient = Callable[..., MQTTClient]

ONE_MB = 1 << 20
_FIELDS = {"id": "i", "type": "t", "ts": 1.0, "source": "s", "data": {}}

# (name, payload, the data handlers get, a word of the decode error)
MALFORMED: list[tuple[str, bytes, Any, str]] = [
    ("not_json", b"hello robot", None, "not JSON"),
    ("json_array", b'[1, "two", {"three": 3}]', [1, "two", {"three": 3}], "list, not an object"),
    ("json_string", b'"wave"', "wave", "str, not an object"),
    ("json_null", b"null", None, "NoneType, not an object"),
    ("missing_fields", b'{"type": "movement.command", "data": {"action": "wave"}}',
     {"type": "movement.command", "data": {"action": "wave"}}, "field 'id'"),
    ("missing_data", ujson.dumps({k: v for k, v in _FIELDS.items() if k != "data"}).encode(),
     {k: v for k, v in _FIELDS.items() if k != "data"}, "field 'data'"),
    ("wrong_types", ujson.dumps({**_FIELDS, "ts": "yesterday"}).encode(),
     {**_FIELDS, "ts": "yesterday"}, "field 'ts'"),
    ("invalid_utf8", b'{"id": "\xff\xfe\xfd"}', None, "not JSON"),
    ("binary", bytes(range(256)), None, "not JSON"),
    ("empty", b"", None, "empty payload"),
    ("one_mb_garbage", b"\xc3" * ONE_MB, None, "not JSON"),
    ("truncated", Envelope(type="t", source="s").encode()[:-3], None, "not JSON"),
]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_malformed_payloads_reach_handlers_raw(
        make_client: MakeClient, protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(protocol=protocol, workers=2)
    publisher = make_client(protocol=protocol)
    got = Collector()
    client.subscribe("bad/#", got, qos=1)
    with caplog.at_level(logging.WARNING, logger="tars_mqtt"):
        for name, payload, _, _ in MALFORMED:
            publisher.publish(f"bad/{name}", payload, qos=1).wait(WAIT)
        publisher.publish_event("bad/valid", "test.after", {"still": "alive"}).wait(WAIT)
        assert got.wait_for(len(MALFORMED) + 1)

    by_topic = {m.topic: m for m in got.messages}
    for name, payload, data, why in MALFORMED:
        msg = by_topic[f"bad/{name}"]
        assert msg.envelope is None, name
        assert msg.payload == payload, name
        assert msg.data == data, name
        assert msg.decode_error is not None and why in msg.decode_error, name
        assert msg.type is None
    after = by_topic["bad/valid"]
    assert after.envelope is not None and after.data == {"still": "alive"}
    # "dispatched" is counted as each handler returns, just after the Collector saw it
    assert wait_until(lambda: client.stats().dispatched == len(MALFORMED) + 1)
    stats = client.stats()
    assert stats.decode_errors == len(MALFORMED) and stats.handler_errors == 0
    assert "bad/not_json" in caplog.text  # the warning names the topic
    assert client.liveness_problem() is None and client.is_connected


def test_one_megabyte_envelope_arrives_whole(make_client: MakeClient) -> None:
    client = make_client()
    got = Collector()
    client.subscribe("big/envelope", got, qos=1)
    blob = "x" * ONE_MB
    client.publish_event("big/envelope", "test.big", {"blob": blob}, qos=1).wait(WAIT)
    assert got.wait_for(1)
    msg = got.messages[0]
    assert msg.envelope is not None and msg.data["blob"] == blob
    assert len(msg.payload) > ONE_MB and client.stats().decode_errors == 0


def test_handler_choking_on_raw_data_is_a_handler_error(make_client: MakeClient) -> None:
    """A handler that assumes an envelope fails on its own message; the next one still runs."""
    client = make_client(workers=1)
    got = Collector()

    def strict(msg: Message) -> None:
        if msg.data["action"]:  # a raw JSON list here: TypeError
            got(msg)

    client.subscribe("strict/cmd", strict, qos=1)
    client.publish("strict/cmd", b"[1, 2]", qos=1).wait(WAIT)
    client.publish_event("strict/cmd", "movement.command", {"action": "wave"}).wait(WAIT)
    assert got.wait_for(1) and got.messages[0].data == {"action": "wave"}
    assert wait_until(lambda: client.stats().handler_errors == 1)
    assert client.stats().decode_errors == 1 and client.liveness_problem() is None


def test_raw_subscription_does_not_count_decode_errors(make_client: MakeClient) -> None:
    """``subscribe(..., raw=True)`` is for publishers that never send envelopes."""
    client = make_client()
    got = Collector()
    client.subscribe("sensors/raw", got, qos=1, raw=True)
    for payload in (b"21.5", b"not json", b""):
        client.publish("sensors/raw", payload, qos=1).wait(WAIT)
    assert got.wait_for(3)
    assert [m.payload for m in got.messages] == [b"21.5", b"not json", b""]
    assert got.messages[0].data == 21.5 and got.messages[0].envelope is None
    assert client.stats().decode_errors == 0
