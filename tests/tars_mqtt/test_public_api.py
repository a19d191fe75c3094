"""Exported names are the documented ones; public types carry no machinery; the error tree."""

from __future__ import annotations

import dataclasses

import pytest

import tars_mqtt
from tars_mqtt.mailboxes import Subscription
from tars_mqtt.transport import connect_error

PUBLIC = {
    "MQTTClient", "MQTTConfig", "Envelope", "Message", "Subscription", "PublishHandle",
    "ReplyHandle", "ClientState", "ClientStats", "MQTTError", "ConfigError", "ConnectError",
    "PublishError", "RequestTimeout", "SubscribeError",
}


def test_all_exports_the_documented_names_sorted() -> None:
    exported = tars_mqtt.__all__
    assert set(exported) == PUBLIC
    assert list(exported) == sorted(exported)
    for name in exported:
        assert getattr(tars_mqtt, name) is not None
    assert tars_mqtt.Subscription is Subscription


@pytest.mark.parametrize(("error", "builtin"), [
    (tars_mqtt.ConfigError, ValueError),
    (tars_mqtt.ConnectError, ConnectionError),
    (tars_mqtt.RequestTimeout, TimeoutError),
    (tars_mqtt.PublishError, Exception),
    (tars_mqtt.SubscribeError, Exception),
])
def test_error_tree(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, tars_mqtt.MQTTError) and issubclass(error, builtin)


def _connack(code: int) -> object:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    return ReasonCode(PacketTypes.CONNACK, identifier=code)


@pytest.mark.parametrize(("code", "reason"), [
    (0x86, "bad_credentials"),
    (0x8C, "bad_credentials"),
    (0x87, "not_authorized"),
    (0x84, "refused"),
    (0x85, "refused"),
    (0x8A, "refused"),
    (0x88, "refused"),  # server unavailable: not in the fatal table, still a refusal
    (0x80, "refused"),
])
def test_connack_codes_become_reasons(code: int, reason: str) -> None:
    error = connect_error(_connack(code), "h", 1883)  # type: ignore[arg-type]
    assert (error.reason, error.reason_code) == (reason, code)
    assert f"(0x{code:02x})" in str(error) and "h:1883" in str(error)


def test_a_subscription_is_what_the_user_made_and_nothing_more() -> None:
    """The dispatcher's mailbox and scheduling live in the dispatcher, not on this type."""
    fields = {f.name for f in dataclasses.fields(Subscription)}
    assert fields == {"filter", "handler", "qos", "raw", "active"}


def test_client_state_is_an_enum_that_reads_as_text() -> None:
    assert [s.value for s in tars_mqtt.ClientState] == ["new", "starting", "running", "stopped"]
    assert tars_mqtt.ClientState.RUNNING == "running" and f"{tars_mqtt.ClientState.NEW}" == "new"
