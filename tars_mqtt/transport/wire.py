"""paho's client with a leaner wire: a whole read parsed at once, queued packets sent in one
write (:mod:`.writes`), and no property objects for messages that carry no properties.

paho reads a packet with three ``recv`` calls (command, length, body) and builds an MQTT 5
``Properties`` object for every PUBLISH, also an empty one. Here a read takes what the
socket has (up to 64 KiB) and parses every complete packet in it. Everything else
(CONNACK, SUBACK, QoS 2, keepalive, reconnect) is paho's own code, fed the same
``_in_packet`` it would have built itself.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from ..config import MQTTConfig
from .paho_api import (
    DECODE_ERRORS,
    CallbackAPIVersion,
    MalformedPacket,
    MQTTErrorCode,
    PacketTypes,
    Properties,
    paho,
)
from .writes import _PUBLISH, BatchedWrites, OnAcked

__all__ = ["OnAcked", "OnPublish", "WireClient"]

_READ = 65536  # bytes asked of the socket per read

# topic (raw bytes), payload, qos, retain, mid, properties (None when the packet had none)
OnPublish = Callable[[bytes, bytes, int, bool, int, "Properties | None"], None]


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


class WireClient(BatchedWrites):
    """paho's client, with our reads and writes and its hooks.

    ``on_publish_packet`` gets every QoS 0/1 PUBLISH as bytes (QoS 2 takes paho's path, on
    to ``on_message`` after its PUBREL), on the network thread; ``on_acked`` a successful
    QoS 0 write (on the thread that wrote it) or PUBACK (refusals take paho's
    ``on_publish``); ``on_queued`` runs, on any thread, after a packet was queued and not
    sent at once, so the network thread can be woken to send it.

    With ``manual_ack`` paho answers a PUBREL for a QoS 2 message it no longer holds with
    nothing (its own comment points at eclipse/paho.mqtt.python#284), and the broker keeps
    the message in flight for ever. It comes after a reconnect, for a message handed over
    on the previous connection, or to a restarted process resuming its session;
    ``on_unknown_pubrel`` decides when to answer.
    """

    on_unknown_pubrel: Callable[[int], None] | None = None
    on_publish_packet: OnPublish | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._parked = False  # read_some stopped at its limit: complete packets wait in _rbuf

    @classmethod
    def for_config(cls, cfg: MQTTConfig) -> WireClient:
        """A client for broker ``cfg``: its protocol, transport, TLS and login."""
        v5 = cfg.protocol == "5"
        client = cls(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                     protocol=paho.MQTTv5 if v5 else paho.MQTTv311, transport=cfg.transport,
                     clean_session=None if v5 else cfg.starts_clean, manual_ack=True)
        if cfg.transport == "websockets":
            client.ws_set_options(path=cfg.ws_path)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert, keyfile=cfg.tls_key)
            client.tls_insecure_set(cfg.tls_insecure)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        client.max_inflight_messages_set(20)  # paces bursts such as the offline flush
        return client

    def no_delay(self) -> None:
        """Send each packet at once (TCP_NODELAY) on a TCP or TLS socket.

        paho leaves Nagle on, which held small QoS 0 publishes back behind the broker's
        delayed ACK: p99 14-18 ms, max ~45 ms at 1,000 msg/s on loopback, against 0.5 ms
        and 2 ms with TCP_NODELAY (bench/RESULTS.md).
        """
        sock = self._sock
        if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def shut_down(self) -> None:
        """End the link from any thread: the network thread then reads its end."""
        sock = self._sock
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # Reading ---------------------------------------------------------------------------
    def read_some(self, limit: int | None = None) -> MQTTErrorCode:
        """One ``recv``, then every complete packet in the buffer, or the first ``limit``
        (the rest waits, unread by the socket, for the next call); an error code ends the
        link. Raises what paho's own handlers raise outside their callbacks (a fault in paho).
        """
        if not self._parked:
            try:
                data = self._sock_recv(_READ)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except OSError as err:
                self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
            self._rbuf += data
        buf = self._rbuf
        pos, end, rc = 0, len(buf), MQTTErrorCode.MQTT_ERR_SUCCESS
        self._parked = False
        left = -1 if limit is None else limit
        while end - pos >= 2:
            if left == 0:
                self._parked = True  # parsed on the next call, before the socket is read
                break
            left -= 1
            length, mult, i = 0, 1, pos + 1
            while True:  # the remaining length: at most 4 bytes of 7 bits
                if i >= end:
                    length = -1
                    break
                byte = buf[i]
                length += (byte & 127) * mult
                mult *= 128
                i += 1
                if not byte & 128:
                    break
                if i - pos > 4:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
            if length < 0 or end - i < length:
                break  # the rest of this packet is still on its way
            command, body, pos = buf[pos], bytes(buf[i:i + length]), i + length
            # What paho's own reader leaves for its handlers (bytes serve them as well).
            self._in_packet = {"command": command, "packet": body,  # type: ignore[typeddict-item]
                               "remaining_length": length, "have_remaining": 1,
                               "remaining_count": [], "pos": 0, "remaining_mult": 1,
                               "to_process": 0}
            try:
                publish = command & 0xF0 == _PUBLISH
                rc = self._handle_publish() if publish else self._packet_handle()
            except MalformedPacket as exc:
                self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
                rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
            if rc or self._sock is None:  # an error, or the broker's DISCONNECT closed it
                break
        del buf[:pos]
        return rc

    def buffered(self) -> bool:
        """Bytes already read (ours, or TLS's) that the next ``read_some`` can parse."""
        if self._parked:
            return True
        pending = getattr(self._sock, "pending", None)
        return pending is not None and pending() > 0

    def _sock_close(self) -> None:
        self._rbuf.clear()  # never parse one connection's bytes on the next
        self._parked = False
        super()._sock_close()

    def _handle_publish(self) -> MQTTErrorCode:
        command, packet = self._in_packet["command"], bytes(self._in_packet["packet"])
        qos = (command & 0x06) >> 1
        hook = self.on_publish_packet
        if qos == 2 or hook is None:
            return super()._handle_publish()
        end = len(packet)
        if end < 2:
            raise MalformedPacket("PUBLISH too short for its topic")
        topic_end = 2 + ((packet[0] << 8) | packet[1])
        pos = topic_end + 2 if qos else topic_end
        if pos > end or (topic_end == 2 and not self._v5):
            raise MalformedPacket("PUBLISH topic longer than the packet, or empty (MQTT 3)")
        topic = packet[2:topic_end]
        mid = (packet[topic_end] << 8) | packet[topic_end + 1] if qos else 0
        props = None
        if self._v5:
            if pos >= end:
                raise MalformedPacket("PUBLISH without its properties length")
            if packet[pos] == 0:  # no properties: the common case, and no object for it
                pos += 1
            else:
                props = _properties(PacketTypes.PUBLISH)
                try:
                    pos += props.unpack(packet[pos:])[1]  # type: ignore[no-untyped-call]
                except DECODE_ERRORS as exc:
                    raise MalformedPacket(str(exc)) from exc
        hook(topic, packet[pos:], qos, bool(command & 0x01), mid, props)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        hook = self.on_acked
        # A success without a reason code or properties (what brokers send): no objects.
        if hook is None or len(packet) != 2 or cmd != "PUBACK":
            return super()._handle_pubackcomp(cmd)
        mid = struct.unpack("!H", packet)[0]
        with self._out_message_mutex:
            message = self._out_messages.pop(mid, None)
            if message is None:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            hook(mid)
            message.info._set_as_published()
            self._inflight_messages -= 1
            if self._max_inflight_messages > 0:
                return self._update_inflight()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_pubrel(self) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        mid = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
        with self._in_message_mutex:
            known = mid in self._in_messages
        rc = super()._handle_pubrel()
        if not known and self.on_unknown_pubrel is not None:
            self.on_unknown_pubrel(mid)
        return rc

    def on_network_thread(self) -> bool:
        return threading.current_thread() is self._thread
