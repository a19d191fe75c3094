"""The transport's wire: whole reads parsed into packets, queued packets joined into sends.

A real socket pair stands in for the broker's end; the bytes are MQTT packets built by hand.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from tars_mqtt.transport import writes
from tars_mqtt.transport.wire import WireClient


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 127, n >> 7
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: bytes, payload: bytes, *, qos: int = 0, mid: int = 0,
             props: bytes | None = b"", retain: bool = False) -> bytes:
    """A PUBLISH; ``props`` None leaves the properties out (MQTT 3.1.1)."""
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    if props is not None:
        body += _varint(len(props)) + props
    body += payload
    return bytes([0x30 | qos << 1 | retain]) + _varint(len(body)) + body


Seen = list[tuple[bytes, bytes, int, bool, int, Any]]


@pytest.fixture(params=["5", "3.1.1"])
def wire(request: pytest.FixtureRequest) -> Iterator[tuple[WireClient, socket.socket, Seen]]:
    protocol = paho.MQTTv5 if request.param == "5" else paho.MQTTv311
    client = WireClient(callback_api_version=CallbackAPIVersion.VERSION2, client_id="wire",
                        protocol=protocol)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    seen: Seen = []
    client.on_publish_packet = lambda *args: seen.append(args)
    yield client, broker, seen
    ours.close()
    broker.close()


def _props(client: WireClient, raw: bytes = b"") -> bytes | None:
    return raw if client.protocol == paho.MQTTv5 else None


def test_one_read_gives_every_complete_packet_and_keeps_the_partial_one(
        wire: tuple[WireClient, socket.socket, Seen]) -> None:
    client, broker, seen = wire
    packets = [_publish(b"a/b", b'{"n":1}', props=_props(client)),
               _publish(b"a/c", b"two", qos=1, mid=7, props=_props(client), retain=True),
               _publish(b"a/" + b"d" * 300, b"x" * 1000, props=_props(client))]
    last = _publish(b"a/e", b"four", props=_props(client))
    broker.sendall(b"".join(packets) + last[:5])
    assert client.read_some() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [(t, p, q, r, m) for t, p, q, r, m, _ in seen] == [
        (b"a/b", b'{"n":1}', 0, False, 0), (b"a/c", b"two", 1, True, 7),
        (b"a/" + b"d" * 300, b"x" * 1000, 0, False, 0)]
    assert all(props is None for *_, props in seen)  # no properties: no object built
    broker.sendall(last[5:])
    assert client.read_some() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert seen[-1][:2] == (b"a/e", b"four")


def test_a_limited_read_leaves_the_rest_for_the_next_call_without_reading_again(
        wire: tuple[WireClient, socket.socket, Seen]) -> None:
    """The client's queue has room for two: the third packet waits in the buffer, and the
    next call parses it before the socket is read again."""
    client, broker, seen = wire
    broker.sendall(b"".join(_publish(b"t", bytes([n]), props=_props(client)) for n in range(3)))
    assert client.read_some(2) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [p for _, p, *_ in seen] == [b"\0", b"\1"]
    assert client.buffered()
    broker.sendall(_publish(b"t", b"\3", props=_props(client)))
    assert client.read_some(2) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [p for _, p, *_ in seen] == [b"\0", b"\1", b"\2"]  # not yet the one just sent
    assert not client.buffered()
    assert client.read_some() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert seen[-1][1] == b"\3"


def test_properties_are_parsed_only_where_there_are_some(
        wire: tuple[WireClient, socket.socket, Seen]) -> None:
    client, broker, seen = wire
    if client.protocol != paho.MQTTv5:
        pytest.skip("MQTT 3.1.1 has no properties")
    correlation = b"\x09" + (4).to_bytes(2, "big") + b"ab12"
    broker.sendall(_publish(b"q/r", b"{}", qos=1, mid=3, props=correlation))
    assert client.read_some() == MQTTErrorCode.MQTT_ERR_SUCCESS
    (topic, payload, _, _, mid, props), = seen
    assert (topic, payload, mid, bytes(props.CorrelationData)) == (b"q/r", b"{}", 3, b"ab12")


def test_a_topic_longer_than_its_packet_ends_the_link(
        wire: tuple[WireClient, socket.socket, Seen]) -> None:
    client, broker, seen = wire
    body = (500).to_bytes(2, "big") + b"short"
    broker.sendall(b"\x30" + _varint(len(body)) + body)
    assert client.read_some() == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert seen == []


def test_a_closed_socket_reads_as_a_lost_link(
        wire: tuple[WireClient, socket.socket, Seen]) -> None:
    client, broker, _ = wire
    broker.close()
    assert client.read_some() == MQTTErrorCode.MQTT_ERR_CONN_LOST


def test_queued_publishes_go_out_in_one_send_then_count_as_written(
        wire: tuple[WireClient, socket.socket, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    client, broker, _ = wire
    monkeypatch.setattr(writes, "_SPARSE", 1e9)  # a busy link: nothing is sent at once
    queued, written, sends = [], [], []
    client.on_queued = lambda: queued.append(1)
    client.on_acked = written.append
    real_send = client._sock_send
    monkeypatch.setattr(client, "_sock_send", lambda buf: sends.append(buf) or real_send(buf))
    mids = [client.publish(f"w/{n}", f"m{n}".encode(), qos=0).mid for n in range(3)]
    assert (len(queued), sends, written) == (3, [], [])  # queued only: the thread sends
    assert client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert len(sends) == 1 and written == mids
    props = _props(client)
    assert broker.recv(65536) == b"".join(_publish(f"w/{n}".encode(), f"m{n}".encode(),
                                                   props=props) for n in range(3))


def test_a_lone_packet_on_a_quiet_link_is_sent_at_once_by_its_own_thread(
        wire: tuple[WireClient, socket.socket, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    """No wake-up of the network thread: the publishing thread writes it (plain TCP)."""
    client, broker, _ = wire
    queued, written = [], []
    client.on_queued = lambda: queued.append(1)
    client.on_acked = written.append
    mid = client.publish_qos0("q/t", b"now", False)
    assert (queued, written, client.want_write()) == ([], [mid], False)
    assert broker.recv(65536) == _publish(b"q/t", b"now", props=_props(client))
    monkeypatch.setattr(writes, "_SPARSE", 1e9)  # the next one follows closely: batched
    client.publish_qos0("q/t", b"later", False)
    assert (queued, client.want_write()) == ([1], True)


def test_a_partial_send_keeps_the_rest_in_order(
        wire: tuple[WireClient, socket.socket, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    client, broker, _ = wire
    written: list[int] = []
    client.on_acked = written.append
    real_send = client._sock_send
    limit = [10]
    monkeypatch.setattr(client, "_sock_send", lambda buf: real_send(buf[:limit[0]]))
    mids = [client.publish("p/t", b"x" * 20, qos=0).mid for _ in range(2)]
    assert client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS  # paho's "try again"
    assert written == [] and client.want_write()
    limit[0] = 65536
    assert client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert written == mids and not client.want_write()
    packet = _publish(b"p/t", b"x" * 20, props=_props(client))
    received = b""
    while len(received) < 2 * len(packet):
        received += broker.recv(65536)
    assert received == packet * 2


@pytest.mark.parametrize("retain", [False, True])
def test_the_lean_qos0_publish_writes_what_paho_would(
        wire: tuple[WireClient, socket.socket, Seen], retain: bool) -> None:
    client, broker, _ = wire
    payload = b"y" * 300  # a two-byte remaining length
    mid = client.publish_qos0("lean/t", payload, retain)
    assert mid > 0 and client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS
    expected = _publish(b"lean/t", payload, props=_props(client), retain=retain)
    assert broker.recv(65536) == expected
    client._sock = None
    assert client.publish_qos0("lean/t", b"", retain) == 0  # no link: nothing queued
    assert not client.want_write()
