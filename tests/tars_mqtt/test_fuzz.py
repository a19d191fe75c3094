"""Property tests: whatever arrives or is configured, only the documented errors come out.

The network and the environment are written by someone else. The decoder must never
raise, settings must fail as ``ConfigError`` only, topic checks as ``ValueError`` only,
and what the encoder accepts the decoder reads back unchanged.
"""

from __future__ import annotations

import json
import math
import string
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tars_mqtt import ConfigError, Envelope, MQTTConfig
from tars_mqtt.envelope import Inbound, decode_envelope
from tars_mqtt.stats import Counters
from tars_mqtt.strictjson import dumps, loads
from tars_mqtt.topics import matches, validate_filter, validate_topic

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# Text with everything a hostile peer can put in JSON: lone surrogates included.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=20,
)
FIELDS = ("id", "type", "ts", "source", "data", "correlate", "reply_to", "seq")


def _json_text(value: Any) -> bytes:
    """JSON as a careless peer writes it: NaN, huge integers and surrogate escapes allowed."""
    return json.dumps(value, allow_nan=True).encode("ascii")


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly well-formed envelopes with hostile values in any field."""
    base: dict[str, Any] = {"id": "a1", "type": "t.x", "ts": 1.5, "source": "s", "data": {}}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        base[name] = draw(JSON_VALUES)
    return base


@FUZZ
@given(st.binary(max_size=200))
def test_decoder_never_raises_on_bytes(payload: bytes) -> None:
    envelope, _, error = decode_envelope(payload)
    assert (envelope is None) != (error is None)


@FUZZ
@given(st.one_of(envelopes(), JSON_VALUES))
def test_decoded_envelopes_are_safe_to_use_and_to_send(value: Any) -> None:
    envelope, data, error = decode_envelope(_json_text(value))
    if envelope is None:
        assert isinstance(error, str) and error
        return
    assert error is None and math.isfinite(envelope.ts)
    assert isinstance(envelope.data, dict) and data == value
    again, _, error = decode_envelope(envelope.encode())  # answering it never raises either
    assert error is None and again == envelope


@FUZZ
@given(st.binary(max_size=100), st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT))
def test_inbound_message_never_raises(payload: bytes, correlation: str | None,
                                      response_topic: str | None) -> None:
    message = Inbound("fuzz/t", payload, 1, False, correlation, response_topic)
    msg = message.message(Counters())
    assert msg.topic == "fuzz/t" and msg.payload == payload


@FUZZ
@given(JSON_VALUES)
def test_what_the_encoder_sends_the_decoder_reads_back(value: Any) -> None:
    try:
        payload = dumps(value)
    except ValueError as exc:
        assert str(exc).startswith("cannot send")
        return
    back, error = loads(payload)
    assert error is None and back == value


_VARIABLES = ["MQTT_URL", "MQTT_CLIENT_ID", "MQTT_SOURCE_NAME", "MQTT_USERNAME",
              "MQTT_PASSWORD", "MQTT_KEEPALIVE", "MQTT_PROTOCOL", "MQTT_CLEAN_START",
              "MQTT_SESSION_EXPIRY", "MQTT_RECEIVE_MAXIMUM", "MQTT_QUEUE_POLICY",
              "MQTT_QUEUE_SIZE", "MQTT_HEARTBEAT_INTERVAL", "MQTT_TLS_INSECURE"]
_URLISH = st.builds(lambda scheme, user, password, host, port: (
    f"{scheme}://{user}:{password}@{host}:{port}"),
    st.sampled_from(["mqtt", "mqtts", "ws", "http", ""]), TEXT, TEXT,
    st.text(string.ascii_letters + ".-[]:", max_size=12), TEXT)


@FUZZ
@given(st.dictionaries(st.sampled_from(_VARIABLES), st.one_of(TEXT, _URLISH), max_size=6),
       st.text(string.ascii_letters + string.digits + "#/?@:%", max_size=8)
       .map(lambda tail: f"Zq\u00a7{tail}"))  # a marker no repr or rule text holds
def test_settings_fail_only_as_config_errors_and_never_show_the_password(
        environ: dict[str, str], password: str) -> None:
    assume(not any(password in value for value in environ.values()))
    environ = {"MQTT_CLIENT_ID": "fuzz", **environ, "MQTT_PASSWORD": password}
    try:
        config = MQTTConfig.from_env(environ=environ)
    except ConfigError as exc:
        assert str(exc).startswith("MQTT_")
        assert password not in str(exc)
        return
    shown = repr(config).replace(f"username={config.username!r}", "")
    assert password not in shown


@FUZZ
@given(TEXT)
def test_topic_checks_raise_only_value_errors(text: str) -> None:
    for check in (validate_topic, validate_filter):
        try:
            check(text)
        except ValueError:
            continue
    try:
        topic = validate_topic(text)
    except ValueError:
        return
    assert matches(topic, topic) and matches("#", topic) != topic.startswith("$")


def test_a_wildcard_reply_to_is_kept_as_sent() -> None:
    """The sender's word: a reply to it is refused by ``reply()``, not by the decoder."""
    payload = json.dumps({**Envelope(type="t", source="s").to_wire(), "reply_to": "a/+/b"})
    envelope, _, error = decode_envelope(payload.encode())
    assert error is None and envelope is not None and envelope.reply_to == "a/+/b"
