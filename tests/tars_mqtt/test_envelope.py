"""Envelope codec: the wire form, the older five-field form, and every malformed input."""

from __future__ import annotations

import dataclasses
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import ujson
from dataclasses_json import dataclass_json

from tars_mqtt import Envelope, Message
from tars_mqtt.envelope import Inbound, decode_envelope, encode_payload, to_data
from tars_mqtt.stats import Counters

FIVE = ("id", "type", "ts", "source", "data")


def wire(**fields: Any) -> bytes:
    base: dict[str, Any] = {"id": "abc", "type": "t.x", "ts": 1700000000.5, "source": "s",
                            "data": {"k": 1}}
    base.update(fields)
    return ujson.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_new_envelope_has_fresh_id_and_time() -> None:
    before = time.time()
    first = Envelope(type="movement.command", source="router")
    second = Envelope(type="movement.command", source="router")
    assert re.fullmatch(r"[0-9a-f]{32}", first.id) and first.id != second.id
    assert before <= first.ts <= time.time()
    assert first.data == {}


def test_optional_fields_left_out_when_empty() -> None:
    sent = ujson.loads(Envelope(type="t", source="s", data={"a": 1}).encode())
    assert tuple(sent) == FIVE
    sent = ujson.loads(Envelope(type="t", source="s", correlate="", reply_to="").encode())
    assert tuple(sent) == FIVE


def test_optional_fields_sent_when_set() -> None:
    env = Envelope(type="t", source="s", correlate="c1", reply_to="system/reply/x", seq=0)
    sent = ujson.loads(env.encode())
    assert (sent["correlate"], sent["reply_to"], sent["seq"]) == ("c1", "system/reply/x", 0)


def test_round_trip() -> None:
    env = Envelope(type="stt.final", source="speech", data={"text": "héllo ☃", "n": [1, 2.5]},
                   correlate="c", reply_to="r", seq=7)
    payload = env.encode()
    assert "☃".encode() in payload  # UTF-8 on the wire, not \\u escapes
    decoded, value, error = decode_envelope(payload)
    assert error is None and decoded == env and value == env.to_wire()


def test_older_five_field_form_decodes() -> None:
    decoded, _, error = decode_envelope(
        b'{"id":"legacy1","type":"wake.event","ts":1700000000,"source":"wake","data":{"x":1}}')
    assert error is None and decoded is not None
    assert (decoded.id, decoded.type, decoded.source, decoded.data) == (
        "legacy1", "wake.event", "wake", {"x": 1})
    assert decoded.ts == 1700000000.0 and isinstance(decoded.ts, float)
    assert (decoded.correlate, decoded.reply_to, decoded.seq) == (None, None, None)


def test_unknown_fields_are_ignored() -> None:
    decoded, _, error = decode_envelope(wire(version=2, extra={"y": 1}))
    assert error is None and decoded is not None and decoded.id == "abc"


def test_odd_optional_fields_are_dropped_not_fatal() -> None:
    decoded, _, error = decode_envelope(wire(correlate=5, reply_to="", seq=True))
    assert error is None and decoded is not None
    assert (decoded.correlate, decoded.reply_to, decoded.seq) == (None, None, None)


@dataclass_json
@dataclass
class Command:
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    speed: float | None = None


@dataclass
class Plain:
    text: str
    n: int = 1


def test_dataclass_data_via_dataclasses_json() -> None:
    data = to_data(Command("wave", {"arm": "left"}, 0.5))
    assert data == {"action": "wave", "params": {"arm": "left"}, "speed": 0.5}
    decoded, _, _ = decode_envelope(Envelope(type="movement.command", source="r",
                                             data=data).encode())
    assert decoded is not None
    assert Command.from_dict(decoded.data) == Command("wave", {"arm": "left"}, 0.5)  # type: ignore[attr-defined]


def test_plain_dataclass_and_none_data() -> None:
    assert to_data(Plain("hi")) == {"text": "hi", "n": 1}
    assert to_data(None) == {}
    with pytest.raises(TypeError, match="data must be a dict or a dataclass, got list"):
        to_data([1, 2])
    with pytest.raises(TypeError, match="got type"):
        to_data(Plain)


def test_dataclasses_json_api_on_envelope() -> None:
    env = Envelope(type="t", source="s", data={"a": 1}, correlate="c")
    as_dict = env.to_dict()  # type: ignore[attr-defined]
    assert as_dict["correlate"] == "c"
    assert Envelope.from_dict(as_dict) == env  # type: ignore[attr-defined]
    assert Envelope.from_json(env.to_json()) == env  # type: ignore[attr-defined]


def test_encode_payload_forms() -> None:
    assert encode_payload(b"\x00\xff") == b"\x00\xff"
    assert encode_payload(bytearray(b"ab")) == b"ab"  # type: ignore[arg-type]
    assert encode_payload("é") == "é".encode()
    assert ujson.loads(encode_payload({"a": [1]})) == {"a": [1]}
    assert ujson.loads(encode_payload([1, "x"])) == [1, "x"]
    assert encode_payload(None) == b""
    with pytest.raises(TypeError, match="payload must be bytes, str, dict or list, got int"):
        encode_payload(5)  # type: ignore[arg-type]


# Malformed payloads: never raise, say why, keep what JSON there is ----------------------
@pytest.mark.parametrize(("payload", "json_value", "why"), [
    (b"", None, "empty payload"),
    (b"hello", None, "not JSON"),
    (b"\xff\xfe\x00garbage", None, "not JSON"),
    (b'{"id": "\xff\xfe"}', None, "not JSON"),
    (b"{" * 5000, None, "not JSON"),
    (b'{"id": "a"', None, "not JSON"),
    (b"[1, 2]", [1, 2], "JSON list, not an object"),
    (b'"text"', "text", "JSON str, not an object"),
    (b"42", 42, "JSON int, not an object"),
    (b"null", None, "JSON NoneType, not an object"),
    (b"{}", {}, "field 'id' missing"),
    (wire(id=...), None, "field 'id' missing or not a str"),
    (wire(type=...), None, "field 'type' missing or not a str"),
    (wire(ts=...), None, "field 'ts' missing or not a number"),
    (wire(source=...), None, "field 'source' missing or not a str"),
    (wire(data=...), None, "field 'data' missing or not a dict"),
    (wire(id=5), None, "field 'id' missing or not a str"),
    (wire(ts="now"), None, "field 'ts' missing or not a number"),
    (wire(ts=True), None, "field 'ts' missing or not a number"),
    (wire(data=[1]), None, "field 'data' missing or not a dict"),
    (wire(data="x"), None, "field 'data' missing or not a dict"),
])
def test_malformed(payload: bytes, json_value: Any, why: str) -> None:
    envelope, value, error = decode_envelope(payload)
    assert envelope is None
    assert error is not None and why in error
    if json_value is not None:
        assert value == json_value
    elif why.startswith("field"):
        assert isinstance(value, dict)  # raw JSON still reaches handlers as data


def test_one_megabyte() -> None:
    big_text = "x" * (1 << 20)
    envelope, _, error = decode_envelope(wire(data={"blob": big_text}))
    assert error is None and envelope is not None and envelope.data["blob"] == big_text
    envelope, _, error = decode_envelope(b"\x80" * (1 << 20))
    assert envelope is None and error is not None and error.startswith("not JSON")


def test_random_bytes_never_raise() -> None:
    rng = random.Random(1234)
    valid = Envelope(type="t", source="s", data={"a": [1, "b"]}).encode()
    for _ in range(2000):
        if rng.random() < 0.5:
            payload = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        else:  # damage a valid envelope: truncate or flip a byte
            damaged = bytearray(valid[: rng.randrange(1, len(valid) + 1)])
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            payload = bytes(damaged)
        envelope, _, error = decode_envelope(payload)
        assert (envelope is None) == (error is not None)


def test_message_text_and_type() -> None:
    msg = Message(topic="t", payload=b"ok \xff")
    assert msg.text == "ok \ufffd" and msg.type is None
    env = Envelope(type="tts.say", source="s")
    assert Message(topic="t", payload=env.encode(), envelope=env).type == "tts.say"


def test_fast_built_records_equal_the_constructors_and_stay_frozen() -> None:
    env, _, _ = decode_envelope(wire(correlate="c", reply_to="r/t", seq=3))
    assert env == Envelope(id="abc", type="t.x", ts=1700000000.5, source="s", data={"k": 1},
                           correlate="c", reply_to="r/t", seq=3)
    msg = Inbound("t/x", wire(), 1, True, "corr", None).message(Counters())
    assert set(vars(msg)) == {f.name for f in dataclasses.fields(Message)}  # every field set
    plain, _, _ = decode_envelope(wire())
    assert msg == Message(topic="t/x", payload=wire(), qos=1, retain=True, envelope=plain,
                          data={"k": 1}, correlate="corr", received_at=msg.received_at)
    for record, name in ((env, "id"), (msg, "topic")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, "changed")
