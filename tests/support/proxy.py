"""A loopback TCP proxy that can black-hole traffic, to fake a half-open link.

``blackhole()`` keeps every socket open but silently drops what flows in either direction
(and what new connections send): neither end sees an error, as when Wi-Fi dies under a
NAT or a switch loses power. ``pass_traffic()`` restores forwarding for bytes sent from then
on; bytes dropped earlier stay lost, as they would on a real link.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from tars_mqtt.testing import free_port

__all__ = ["BlackHoleProxy"]


class BlackHoleProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port`` in one selector thread."""

    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.accepted = 0  # connections accepted so far, black-holed or not
        self.dropped_bytes = 0
        self._blackholed = threading.Event()
        self._stopping = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> BlackHoleProxy:
        self._thread.start()
        return self

    def blackhole(self) -> None:
        self._blackholed.set()

    def pass_traffic(self) -> None:
        self._blackholed.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for sock in [self._listener, *self._peers]:
            with contextlib.suppress(OSError):
                sock.close()
        self._selector.close()

    def connections(self) -> int:
        with self._lock:
            return self.accepted

    def _run(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif sock in self._peers:
                    self._pump(sock)

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            client, _ = self._listener.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()  # the broker is down: refuse, as a dead broker would
                return
            for sock in (client, upstream):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._selector.register(sock, selectors.EVENT_READ)
            self._peers[client], self._peers[upstream] = upstream, client
            with self._lock:
                self.accepted += 1

    def _pump(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_pair(sock)
            return
        if self._blackholed.is_set():
            self.dropped_bytes += len(data)
            return
        peer = self._peers[sock]
        try:
            peer.setblocking(True)  # loopback: a short blocking write keeps the order simple
            peer.sendall(data)
            peer.setblocking(False)
        except OSError:
            self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        if peer is not None:
            self._peers.pop(peer, None)
        for s in (sock, peer):
            if s is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            with contextlib.suppress(OSError):
                s.close()
