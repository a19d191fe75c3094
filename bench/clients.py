"""The threaded contenders: raw paho-mqtt (MQTT 5, the baseline, and 3.1.1) and tars sync.

Raw paho gets what tars_mqtt's transport sets (20 messages in flight, TCP_NODELAY) and
decodes in ``on_message``; tars_mqtt runs with its defaults (4 workers, queue 1,000,
``block``, MQTT 5) and its handler gets ``msg.data`` after its own decode, on a worker.
"""

from __future__ import annotations

import socket
import threading
from time import monotonic
from typing import Any

import paho.mqtt.client as paho
import ujson
from paho.mqtt.enums import CallbackAPIVersion

from tars_mqtt import Envelope, Message, MQTTClient, MQTTConfig

from .workers import TYPE, Channel, PubSpec, Recorder, SubSpec, padding, pump, watch, wire

__all__ = ["publish_paho311", "publish_paho5", "publish_tars", "publish_tars311",
           "subscribe_paho311", "subscribe_paho5", "subscribe_tars", "subscribe_tars311"]

_PROTOCOLS = {"paho5": paho.MQTTv5, "paho311": paho.MQTTv311}


def _client_id(role: str, spec: SubSpec | PubSpec) -> str:
    return f"bench-{role}-{spec.lib}-{spec.topic.replace('/', '-')}"


def _paho(role: str, spec: SubSpec | PubSpec) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=_client_id(role, spec),
                         protocol=_PROTOCOLS[spec.lib])
    client.max_inflight_messages_set(20)  # what tars_mqtt's transport sets
    # tars_mqtt's reconnect delays, for a fair reconnect race (paho types them as int)
    client.reconnect_delay_set(0.5, 5)  # type: ignore[arg-type]
    return client


def _connect(client: paho.Client, spec: SubSpec | PubSpec) -> None:
    """Connect, then TCP_NODELAY on the socket as tars_mqtt does (paho leaves Nagle on)."""
    client.connect(spec.host, spec.port)
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()


def _tars(role: str, spec: SubSpec | PubSpec) -> MQTTClient:
    """tars sync with its defaults; ``tars311`` the same on MQTT 3.1.1 (what 5 costs it)."""
    return MQTTClient(MQTTConfig(url=f"mqtt://{spec.host}:{spec.port}",
                                 client_id=_client_id(role, spec),
                                 protocol="3.1.1" if spec.lib == "tars311" else "5"))


# Subscribers -----------------------------------------------------------------------------
def _subscribe_paho(spec: SubSpec, rec: Recorder, ch: Channel) -> dict[str, Any]:
    client = _paho("sub", spec)
    subscribed = threading.Event()

    def on_message(c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
        rec.on_data(ujson.loads(msg.payload)["data"])

    def on_connect(c: paho.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        c.subscribe(spec.topic, spec.qos)  # on every connect: raw paho does not resubscribe

    def on_subscribe(c: paho.Client, u: Any, mid: int, codes: Any, props: Any) -> None:
        subscribed.set()

    client.on_message, client.on_connect = on_message, on_connect
    client.on_subscribe = on_subscribe
    _connect(client, spec)
    try:
        if not subscribed.wait(10):
            raise TimeoutError("no SUBACK within 10 s")
        ch.ready.set()
        watch(spec, rec, ch)
        return rec.result()
    finally:
        client.disconnect()
        client.loop_stop()


subscribe_paho5 = subscribe_paho311 = _subscribe_paho


def subscribe_tars(spec: SubSpec, rec: Recorder, ch: Channel) -> dict[str, Any]:
    client = _tars("sub", spec)

    def handler(msg: Message) -> None:
        rec.on_data(msg.data)

    client.subscribe(spec.topic, handler, qos=spec.qos)
    client.start()  # returns once the SUBACK is in
    try:
        ch.ready.set()
        watch(spec, rec, ch)
        return rec.result(dropped=client.stats().dropped)
    finally:
        client.stop()


# Publishers ------------------------------------------------------------------------------
def _publish_paho(spec: PubSpec, ch: Channel) -> dict[str, Any]:
    client = _paho("pub", spec)
    _connect(client, spec)
    topic, qos = spec.topic, spec.qos
    pad = padding(lambda p: len(wire(10_000, p)))
    try:
        return pump(spec, ch, lambda seq: client.publish(topic, wire(seq, pad), qos=qos),
                    lambda last: last.wait_for_publish(60),
                    lambda: client.publish(f"{topic}/fence", b"{}", qos=1).wait_for_publish(60))
    finally:
        client.disconnect()
        client.loop_stop()


publish_paho5 = publish_paho311 = _publish_paho


def publish_tars(spec: PubSpec, ch: Channel) -> dict[str, Any]:
    client = _tars("pub", spec)
    client.start()
    topic, qos = spec.topic, spec.qos
    pad = padding(lambda p: len(Envelope(TYPE, client.config.source, {
        "seq": 10_000, "sent": monotonic(), "pad": p}, seq=10_000).encode()))

    def send(seq: int) -> Any:
        return client.publish_event(topic, TYPE, {"seq": seq, "sent": monotonic(), "pad": pad},
                                    qos=qos)

    try:
        return pump(spec, ch, send, lambda last: last.wait(60),
                    lambda: client.publish(f"{topic}/fence", {}, qos=1).wait(60))
    finally:
        client.stop()


subscribe_tars311, publish_tars311 = subscribe_tars, publish_tars
