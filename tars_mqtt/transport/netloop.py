"""The client's network thread: it drives paho's client instead of ``loop_start``.

One ``select`` on the socket and a wake-up socket pair; then one read (every complete
packet in it, handed on as one batch), one write of everything queued, and paho's
keepalive. Threads that queue a packet wake it with one byte, and only when no wake-up is
pending already, so a burst of publishes costs one wake-up and goes out in one ``send``.
A read parses at most ``budget()`` packets (the rest stays buffered); a budget of 0 (the
client's queue is full) holds reads until woken, up to ``_HOLD`` seconds at a time, so the
keepalive and the link watchdog still see traffic through a stalled handler.
After a lost link it waits the delay the transport set (any wake-up that is not a stop
waits on), then reconnects with paho's own ``reconnect()``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

from .paho_api import MQTTErrorCode, _ConnectionState
from .wire import WireClient

__all__ = ["NetworkLoop"]

_IDLE = 1.0  # seconds between keepalive checks on a quiet link (paho's loop_forever default)
_HOLD = 0.1  # most seconds one hold of the reads lasts: far below any watchdog threshold
_ENDED = (_ConnectionState.MQTT_CS_DISCONNECTING, _ConnectionState.MQTT_CS_DISCONNECTED)


class NetworkLoop:
    """Runs one ``WireClient`` on a thread of its own, named ``name``.

    ``delay()`` is the wait before the next connection attempt; ``after_read()`` runs on
    this thread after every read, to hand the messages parsed in it on at once;
    ``budget()`` is asked before each read (None: no limit; 0: hold, and the caller wakes
    the thread once reading may go on).
    """

    def __init__(self, client: WireClient, *, name: str, delay: Callable[[], float],
                 after_read: Callable[[], None],
                 budget: Callable[[], int | None] = lambda: None) -> None:
        self._client, self._name = client, name
        self._delay, self._after_read, self._budget = delay, after_read, budget
        self._held_since: float | None = None  # when the reads were first held, this time
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = False  # a wake-up byte is on its way: no need for another
        self._terminate = False  # end now, written or not
        self._stopping = False  # end once paho's DISCONNECT is written
        self._ident: int | None = None
        self.thread: threading.Thread | None = None
        client.on_queued = self.wake

    def start(self) -> None:
        self._terminate = self._stopping = False
        thread = self.thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._client._thread = thread  # paho's own checks of "a thread runs me"
        thread.start()

    def alive(self) -> bool:
        thread = self.thread
        return thread is not None and thread.is_alive()

    def wake(self) -> None:
        """Something was queued: have the network thread send it (from any thread)."""
        if self._woken or threading.get_ident() == self._ident:
            return  # pending already, or the thread itself writes before it waits again
        self._woken = True
        with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed
            self._wake_w.send(b"\0")

    def stop(self, timeout: float) -> None:
        """Let the thread write paho's DISCONNECT and end; past ``timeout``, end it anyway."""
        thread = self.thread
        self._stopping = True
        if thread is None or thread is threading.current_thread():
            return  # on the thread itself: it writes the DISCONNECT once this callback ends
        self._woken = False
        self.wake()
        thread.join(timeout)
        if thread.is_alive():  # the broker took nothing more: drop the link
            self._terminate = True
            self.wake()
            thread.join(timeout)

    def _main(self) -> None:
        self._ident = threading.get_ident()
        client = self._client
        try:
            self._connect()
            while not self._ended():
                if self._stopping and client._state not in _ENDED:
                    client.disconnect()  # a connection that came up while stop() ran
                if client._sock is None:
                    self._sleep(self._delay())
                    if not self._ended():
                        self._connect()
                else:
                    self._step()
        finally:
            if self._terminate:
                client._sock_close()
            client._thread = None
            self._ident = None

    def _ended(self) -> bool:
        client = self._client
        return self._terminate or (client._state in _ENDED and client._sock is None)

    def _connect(self) -> None:
        try:
            self._client.reconnect()
        except OSError:  # paho's on_connect_fail reads the exception being handled
            self._client._handle_on_connect_fail()

    def _sleep(self, seconds: float) -> None:
        """Wait out a reconnect delay; only a stop (or a wanted disconnect) ends it early."""
        deadline = time.monotonic() + seconds
        while not self._ended():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            select.select([self._wake_r], [], [], left)
            self._woken = False
            self._drain()

    def _limit(self) -> tuple[float, int | None]:
        """Seconds to hold the reads (0.0: read now), and the packets the read may parse.
        A hold lasts up to _HOLD; then one read takes everything (what does not fit in the
        queue is dropped and counted), and the next hold starts."""
        budget = self._budget()
        if budget != 0:
            self._held_since = None
            return 0.0, budget
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        left = self._held_since + _HOLD - now
        if left <= 0:
            self._held_since = None
            return 0.0, None
        return left, None

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)

    def _step(self) -> None:
        client = self._client
        sock = client._sock
        assert sock is not None
        self._woken = False  # before looking at the queue: a packet queued after it wakes us
        held, limit = self._limit()
        ready = not held and client.buffered()
        writing = [sock] if client._out_packet else []
        try:
            readable, _, _ = select.select([self._wake_r] if held else [sock, self._wake_r],
                                           writing, [], held or (0.0 if ready else _IDLE))
        except (TypeError, ValueError, OSError):  # the socket went away under us
            client._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            return
        if self._wake_r in readable:
            self._drain()
            # The threads that woke us most likely have more to queue: let them (until they
            # block, or the interpreter's switch interval), then send it all in one write.
            # Nobody else wakes us meanwhile: the flag is still set.
            time.sleep(0)
        if ready or sock in readable:
            rc = client.read_some(limit)
            self._after_read()
            if rc:
                client._loop_rc_handle(rc)
                return
        if client._out_packet and client._sock is not None:
            client.loop_write()
        if client._sock is not None:
            client.loop_misc()
