"""Test support for the services: a recording stand-in for the MQTT client, messages."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Any

from tars_mqtt import Envelope, Message
from tars_mqtt.topics import validate_topic


class Published:
    """One publish_event or reply the service made."""

    def __init__(self, topic: str, event_type: str, data: dict[str, Any], qos: int,
                 retain: bool, correlate: str | None) -> None:
        self.topic, self.event_type, self.data = topic, event_type, data
        self.qos, self.retain, self.correlate = qos, retain, correlate

    def __repr__(self) -> str:
        return f"<{self.topic} {self.data} correlate={self.correlate}>"


class FakeClient:
    """Records subscriptions and publishes; ``wait_for`` waits on a condition, no sleeping."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Message], Any]] = {}
        self.published: list[Published] = []
        self._cond = threading.Condition()

    def subscribe(self, topic_filter: str, handler: Callable[[Message], Any],
                  qos: int = 0) -> None:
        self.handlers[topic_filter] = handler

    def publish_event(self, topic: str, event_type: str, data: dict[str, Any], qos: int = 1,
                      retain: bool = False, correlate: str | None = None) -> Published:
        """Refuses what the real client refuses: a malformed topic, an unencodable envelope."""
        validate_topic(topic)
        Envelope(type=event_type, source="fake", data=data, correlate=correlate).encode()
        with self._cond:
            self.published.append(Published(topic, event_type, data, qos, retain, correlate))
            self._cond.notify_all()
            return self.published[-1]

    def reply(self, request: Message, event_type: str, data: dict[str, Any]) -> Published:
        if not request.reply_to:
            raise ValueError(f"message on {request.topic!r} has no reply_to")
        correlate = request.envelope.id if request.envelope else request.correlate
        return self.publish_event(request.reply_to, event_type, data, correlate=correlate)

    def on(self, topic: str) -> list[Published]:
        with self._cond:
            return [p for p in self.published if p.topic == topic]

    def wait_for(self, predicate: Callable[[Published], bool], timeout: float = 10.0
                 ) -> Published:
        """The first publish matching ``predicate``, waiting up to ``timeout`` for it."""
        found: list[Published] = []

        def check() -> bool:
            found[:] = [p for p in self.published if predicate(p)]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(check, timeout), \
                f"no matching publish within {timeout} s; published: {self.published}"
        return found[0]


def message(topic: str, data: Any, *, reply_to: str | None = None,
            event_type: str = "test.event", envelope_id: str | None = None) -> Message:
    """A decoded envelope as a worker would hand it to a handler (any id, any reply_to)."""
    envelope = Envelope(type=event_type, source="test", data=data, reply_to=reply_to)
    if envelope_id is not None:
        envelope = dataclasses.replace(envelope, id=envelope_id)
    payload = json.dumps(envelope.to_wire()).encode()  # escapes what UTF-8 cannot carry
    return Message(topic=topic, payload=payload, qos=1, envelope=envelope,
                   data=data, correlate=None, reply_to=reply_to)


def garbage(topic: str, payload: bytes = b"\xffnot json") -> Message:
    """A payload that is no envelope, as the client hands it over."""
    return Message(topic=topic, payload=payload, qos=1, envelope=None, data=None,
                   decode_error="not JSON")
