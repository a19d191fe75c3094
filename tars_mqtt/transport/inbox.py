"""Messages in, on the network thread: each PUBLISH becomes an ``Inbound`` and is routed at
once; the messages of one read are handed on together, then released by the reader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..acks import DeliveryAcks
from ..envelope import Inbound
from .paho_api import Properties, paho

__all__ = ["Inbox", "OnMessage"]

OnMessage = Callable[[Inbound, list[int] | None], None]  # message, subscription ids (v5)


def _read_properties(props: Properties | None
                     ) -> tuple[str | None, str | None, list[int] | None]:
    """Correlation data (as text), response topic and subscription ids of a PUBLISH."""
    if props is None:
        return None, None, None
    raw_corr = getattr(props, "CorrelationData", None)
    correlation = bytes(raw_corr).decode("utf-8", errors="replace") if raw_corr else None
    return (correlation, getattr(props, "ResponseTopic", None),
            getattr(props, "SubscriptionIdentifier", None))


class Inbox:
    """Turns what paho parsed into routed ``Inbound`` messages, one read at a time.

    ``on_message`` routes one message (and may raise: the transport's guard counts it);
    ``on_batch`` hands a read's routed messages on. Each ``Inbound`` keeps the reader's
    own hold until then, so none is acknowledged before it was queued, or dropped.
    """

    def __init__(self, acks: DeliveryAcks, *, v5: bool, ack: Callable[[int, int], object],
                 on_message: OnMessage, on_batch: Callable[[], None]) -> None:
        self._acks, self._v5, self._ack = acks, v5, ack
        self._on_message, self._on_batch = on_message, on_batch
        self._held: list[Inbound] = []  # read and routed, not yet handed on

    def from_packet(self, topic: bytes, payload: bytes, qos: int, retain: bool, mid: int,
                    props: Properties | None) -> None:
        """A QoS 0/1 PUBLISH as the wire parsed it (no paho message object)."""
        try:
            text = topic.decode("utf-8")
        except UnicodeDecodeError:  # not even routable: acknowledged, or it holds a slot
            if qos:
                self._ack(mid, qos)
            raise
        correlation, response_topic, sub_ids = _read_properties(props)
        acks = self._acks
        self._route(Inbound(text, payload, qos, retain, correlation, response_topic, mid=mid,
                            link=acks.link, on_done=acks.settle if qos else None), sub_ids)

    def from_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        """A QoS 2 message after its PUBLISH and PUBREL, the way paho hands it over."""
        props = msg.properties if self._v5 else None
        try:
            correlation, response_topic, sub_ids = _read_properties(props)
            inbound = Inbound(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                              correlation, response_topic, mid=msg.mid, link=self._acks.link,
                              on_done=self._acks.settle if msg.qos else None)
        except Exception:
            if msg.qos:  # not even readable: acknowledged, or it would hold a slot for ever
                self._ack(msg.mid, msg.qos)
            raise
        self._acks.received(inbound)
        self._route(inbound, sub_ids)

    def _route(self, inbound: Inbound, sub_ids: list[int] | None) -> None:
        self._held.append(inbound)
        self._on_message(inbound, sub_ids)

    def after_read(self) -> None:
        """The read is parsed: hand its messages on, then release the reader's holds."""
        held = self._held
        if held:
            self._held = []
            try:
                self._on_batch()
            finally:
                for inbound in held:
                    inbound.release()
