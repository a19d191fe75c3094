"""The sending half of the wire: queued packets joined into one ``send``, except where one
packet alone on a quiet link goes out at once from the thread that queued it.

paho writes one ``send`` per packet, from the caller's thread when it can, and wakes its
loop with another per packet. Batching pays in a burst (a flood of QoS 0 publishes goes
out in a few sends) and costs latency on a quiet link: the network thread must wake and
get the interpreter lock first. So a PUBLISH or PUBACK queued when nothing else waits, in
a stream of packets more than ``_SPARSE`` seconds apart on average, is written by its own
thread (plain TCP only: TLS and websocket sockets are read and written by the network
thread alone). An average, not the last gap: a timer that fires late makes two packets
of a 1,000 msg/s stream follow each other closely, and neither should wait.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .paho_api import MQTTErrorCode, _ConnectionState, paho

__all__ = ["BatchedWrites", "OnAcked"]

_PUBLISH, _PUBACK, _DISCONNECT = 0x30, 0x40, 0xE0
_WRITE = 65536  # bytes joined into one send
_MAX_PAYLOAD = 268435455  # what MQTT's remaining length can carry, as paho checks it
# Packets queued this far apart on average are a stream slower than ~2,000 packets/s:
# each is sent at once instead of waking the network thread.
_SPARSE = 0.0005
_GAP_CAP = 0.01  # a longer pause counts as this, so a burst after it batches within ~13
_WEIGHT = 0.2  # of the newest gap in the running average
_DIRECT = (_PUBLISH, _PUBACK)

OnAcked = Callable[[int], None]  # mid: a QoS 0 publish written, or a QoS 1/2 one acknowledged


class BatchedWrites(paho.Client):
    """paho's client with our writes; ``on_acked`` (see ``WireClient``) and ``on_queued``
    (any thread: a packet waits, wake the network thread to send it) are its hooks."""

    on_acked: OnAcked | None = None
    on_queued: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._v5 = self._protocol == paho.MQTTv5
        self._write_lock = threading.Lock()  # one writer at a time, so packets keep order
        self._queued_at = 0.0  # monotonic time the last packet was queued
        self._gap = _GAP_CAP  # average time between queued packets (any thread, no lock:
        # a race only nudges a heuristic)

    def publish_qos0(self, topic: str, payload: bytes, retain: bool) -> int:
        """Queue a QoS 0 PUBLISH without properties; its mid, or 0 while there is no link.

        What ``publish()`` does for it, without the ``MQTTMessageInfo`` (a lock and a
        condition each) nobody here waits on. The topic was checked by the caller.
        """
        if len(payload) > _MAX_PAYLOAD:
            raise ValueError("Payload too large.")
        if self._sock is None:
            return 0
        name = topic.encode("utf-8")
        mid = self._mid_generate()
        packet = bytearray(b"\x31" if retain else b"\x30")
        length = 2 + len(name) + len(payload) + self._v5
        while True:
            byte, length = length & 127, length >> 7
            packet.append(byte | 128 if length else byte)
            if not length:
                break
        packet += len(name).to_bytes(2, "big")
        packet += name
        if self._v5:
            packet.append(0)  # no properties
        packet += payload
        self._packet_queue(_PUBLISH, packet, mid, 0)
        return mid

    def _packet_queue(self, command: int, packet: bytes | bytearray, mid: int, qos: int,
                      info: paho.MQTTMessageInfo | None = None) -> MQTTErrorCode:
        """Queue; send at once when the link is quiet (see the module), else wake the
        network thread, which sends everything queued by then in one write."""
        out = self._out_packet
        out.append({"command": command, "mid": mid, "qos": qos, "pos": 0,
                    "to_process": len(packet), "packet": packet, "info": info})
        now = time.monotonic()
        gap = self._gap = (1 - _WEIGHT) * self._gap + _WEIGHT * min(now - self._queued_at,
                                                                    _GAP_CAP)
        self._queued_at = now
        if (len(out) == 1 and command & 0xF0 in _DIRECT and type(self._sock) is socket.socket
                and gap > _SPARSE and self._write_lock.acquire(blocking=False)):
            try:
                self._write_queued(direct=True)
            finally:
                self._write_lock.release()
            if not out:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        queued = self.on_queued
        if queued is not None:
            queued()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_write(self) -> MQTTErrorCode:
        with self._write_lock:
            return self._write_queued()

    def _write_queued(self, direct: bool = False) -> MQTTErrorCode:
        """Send what is queued, up to _WRITE bytes a ``send``; ``direct``: on the thread that
        queued it, which leaves a DISCONNECT (and what follows) to the network thread."""
        out = self._out_packet
        while out:
            batch: list[Any] = []
            chunks: list[bytes | bytearray] = []
            size = 0
            while out and size < _WRITE:
                packet = out.popleft()
                disconnect = packet["command"] & 0xF0 == _DISCONNECT
                if disconnect and direct:
                    out.appendleft(packet)
                    break
                batch.append(packet)
                chunk = packet["packet"]
                chunks.append(chunk[packet["pos"]:] if packet["pos"] else chunk)
                size += packet["to_process"]
                if disconnect:
                    break  # paho closes the socket once it is written
            if not batch:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            try:
                sent = self._sock_send(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            except (AttributeError, ValueError):
                out.extendleft(reversed(batch))
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except BlockingIOError:
                out.extendleft(reversed(batch))
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as err:
                out.extendleft(reversed(batch))
                self._easy_log(paho.MQTT_LOG_ERR, "failed to send on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            with self._msgtime_mutex:
                self._last_msg_out = paho.time_func()
            for n, packet in enumerate(batch):
                left = packet["to_process"]
                if sent < left:  # the socket took part of it: the rest when it has room
                    packet["to_process"] -= sent
                    packet["pos"] += sent
                    out.extendleft(reversed(batch[n:]))
                    return MQTTErrorCode.MQTT_ERR_AGAIN
                sent -= left
                packet["pos"] += left
                packet["to_process"] = 0
                if self._written(packet):
                    out.extendleft(reversed(batch[n + 1:]))
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _written(self, packet: Any) -> bool:
        """After a whole packet went out: paho's bookkeeping; True when it was DISCONNECT."""
        kind = packet["command"] & 0xF0
        if kind == _PUBLISH and packet["qos"] == 0:
            hook = self.on_acked
            if hook is not None:
                hook(packet["mid"])
            if packet["info"] is not None:
                packet["info"]._set_as_published()
        elif kind == _DISCONNECT:
            self._do_on_disconnect(packet_from_broker=False,
                                   v1_rc=MQTTErrorCode.MQTT_ERR_SUCCESS)
            self._sock_close()
            # Only a wanted disconnection ends the client; the broker's may be reconnected.
            if self._state == _ConnectionState.MQTT_CS_DISCONNECTING:
                self._state = _ConnectionState.MQTT_CS_DISCONNECTED
            return True
        return False
