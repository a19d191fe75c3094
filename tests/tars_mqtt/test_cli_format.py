"""``sub -F``: mosquitto_sub's format sequences, escaping on a terminal, and refusals."""

from __future__ import annotations

import json
import time

import pytest

from tars_mqtt import Message
from tars_mqtt.cli._format import compile_format
from tars_mqtt.envelope import Envelope, decode_envelope

AT = time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1)) + 0.25  # local time 07:08:09.25


def envelope_message(**data: object) -> Message:
    payload = Envelope(type="demo.kind", source="probe", data=dict(data), id="abc",
                       correlate="req-1").encode()
    envelope, _, _ = decode_envelope(payload)
    assert envelope is not None
    return Message("demo/topic", payload, qos=1, retain=True, envelope=envelope,
                   data=envelope.data, correlate="req-1", received_at=AT)


def raw_message(payload: bytes, topic: str = "raw/t") -> Message:
    return Message(topic, payload, qos=0, received_at=AT)


def render(fmt: str, msg: Message, escape: bool = False) -> bytes:
    return compile_format(fmt)(msg, escape)


def test_mosquitto_sequences() -> None:
    msg = raw_message(b"hi\x00")
    assert render("%t %p %l %q %r", msg) == b"raw/t hi\x00 3 0 0"
    assert render("%x|%X|%%", raw_message(b"\xab\x01")) == b"ab01|AB01|%"
    assert render("%I", msg) == time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                              time.localtime(AT)).encode()
    assert render("%U", msg) == f"{AT:.9f}".encode()
    assert render("@H:@M:@S.@N @@", msg) == b"07:08:09.250000000 @"
    assert render("a\\tb\\n\\0\\e\\\\", msg) == b"a\tb\n\0\x1b\\"


def test_json_sequences() -> None:
    as_text = json.loads(render("%j", raw_message(b'{"x": 1}')))
    assert (as_text["topic"], as_text["payload"], as_text["payloadlen"]) == \
        ("raw/t", '{"x": 1}', 8)
    assert json.loads(render("%J", raw_message(b'{"x": 1}')))["payload"] == {"x": 1}
    assert json.loads(render("%J", raw_message(b"not json")))["payload"] == "not json"


def test_envelope_sequences() -> None:
    msg = envelope_message(action="wave")
    assert render("%e %s %i %c %d %r %q", msg) == \
        b'demo.kind probe abc req-1 {"action":"wave"} 1 1'
    raw = raw_message(b"plain")
    assert render("[%e][%s][%i][%c] %d", raw) == b"[][][][] plain"


def test_piped_payload_is_the_bytes_on_a_terminal_escaped() -> None:
    msg = raw_message(b"\x1b[2Jgone\xff", topic="t/\u202e")
    assert render("%t %p", msg) == "t/\u202e".encode() + b" \x1b[2Jgone\xff"
    shown = render("%t %p", msg, escape=True)
    assert b"\x1b" not in shown and b"\xe2\x80\xae" not in shown
    assert shown == b"t/\\u202e \\x1b[2Jgone\\xff"


@pytest.mark.parametrize(("fmt", "says"), [
    ("%z", "%z is not known"),
    ("%", "'%' at the end"),
    ("@!", "@! is no time sequence"),
    ("\\q", "\\q is no escape"),
])
def test_bad_formats_are_refused(fmt: str, says: str) -> None:
    with pytest.raises(ValueError, match="^-F: ") as caught:
        compile_format(fmt)
    assert says in str(caught.value)
