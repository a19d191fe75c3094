"""The shortest round trip through a real broker: the fixtures themselves work."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tars_mqtt import Message, MQTTClient


def test_envelope_round_trip(make_client: Callable[..., MQTTClient]) -> None:
    received: list[Message] = []
    done = threading.Event()
    client = make_client()

    def on_message(msg: Message) -> None:
        received.append(msg)
        done.set()

    client.subscribe("smoke/test", on_message, qos=1)
    client.publish_event("smoke/test", "smoke.ping", {"n": 1}).wait(5)
    assert done.wait(5), "the message never reached the handler"
    assert received[0].envelope is not None
    assert received[0].envelope.type == "smoke.ping"
    assert received[0].data == {"n": 1}
    assert received[0].envelope.source == client.config.source
