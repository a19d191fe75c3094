"""Acknowledgements both ways: the broker's answers to what the client sent, typed and
matched to whoever waits, and the client's answers to what the broker delivered.

paho reports a PUBACK/PUBCOMP and a SUBACK by message id on its network thread. Each kind
has its own result type and its own book, so a waiter gets exactly the answer it asked
for and nothing tells results apart at run time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .envelope import Inbound

__all__ = ["AckBook", "DeliveryAcks", "PubAck", "SubAck", "Waiter"]


@dataclass(frozen=True)
class PubAck:
    """A publish is done: written (QoS 0) or acknowledged (QoS 1/2); ``error`` if it failed."""

    error: str | None = None


@dataclass(frozen=True)
class SubAck:
    """The broker's reason codes for one SUBSCRIBE; 0x80 and above are refusals."""

    codes: tuple[int, ...] = ()

    @property
    def refused(self) -> int | None:
        """The first refusal code, or None when every filter was granted."""
        return next((code for code in self.codes if code >= 0x80), None)


R = TypeVar("R", PubAck, SubAck)
R_contra = TypeVar("R_contra", PubAck, SubAck, contravariant=True)


class Waiter(Protocol[R_contra]):
    def settle(self, result: R_contra) -> None: ...


class AckBook(Generic[R]):
    """Matches paho's answers to whoever waits on that message id.

    An answer can arrive (on the network thread) before the sender has registered its id,
    so an early result is parked until ``bind`` collects it. No lock of ours is held while
    calling a waiter, which keeps paho's own locks free of deadlock with ours.
    """

    _EARLY_LIMIT = 10000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, Waiter[R]] = {}
        self._early: OrderedDict[int, R] = OrderedDict()

    def bind(self, mid: int, waiter: Waiter[R]) -> None:
        with self._lock:
            if mid in self._early:
                result = self._early.pop(mid)
            else:
                self._waiting[mid] = waiter
                return
        waiter.settle(result)

    def settle(self, mid: int, result: R) -> None:
        with self._lock:
            waiter = self._waiting.pop(mid, None)
            if waiter is None:
                self._early[mid] = result
                while len(self._early) > self._EARLY_LIMIT:
                    self._early.popitem(last=False)
                return
        waiter.settle(result)

    def fail_all(self, result: R) -> None:
        """Answer everyone still waiting with ``result`` (the client stopped)."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.settle(result)


class DeliveryAcks:
    """Acknowledging what the broker delivered: PUBACK (QoS 1) or PUBCOMP (QoS 2).

    Only on the connection a message came on: after a reconnect the broker resends what
    was not acknowledged (a persistent session) or forgot it (a clean one), and an old
    packet id on the new connection would acknowledge some other message. A QoS 2 PUBREL
    sent again on the new connection is answered once its handler is done. ``send`` is
    paho's ``ack(mid, qos)``; every method may be called from any thread.
    """

    def __init__(self, send: Callable[[int, int], object]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._up = False
        self.link = 0  # connections made so far: which one a message came on
        self._open_qos2: dict[int, Inbound] = {}  # handed over, not yet acknowledged
        self._pubrel_again: set[int] = set()  # its PUBREL came again, handler still busy

    def connected(self) -> None:
        with self._lock:
            self._up, self.link = True, self.link + 1
            self._pubrel_again.clear()

    def disconnected(self) -> None:
        with self._lock:
            self._up = False
            self._pubrel_again.clear()

    def received(self, inbound: Inbound) -> None:
        """A QoS 2 message was handed over (paho got its PUBREL)."""
        if inbound.qos == 2:
            with self._lock:
                self._open_qos2[inbound.mid] = inbound

    def settle(self, inbound: Inbound) -> None:
        """Every consumer is done with ``inbound`` (its ``on_done``)."""
        mid, qos = inbound.mid, inbound.qos
        with self._lock:
            if qos == 2:
                if self._open_qos2.get(mid) is inbound:
                    del self._open_qos2[mid]
                if mid in self._pubrel_again:
                    self._pubrel_again.discard(mid)
                    self._send(mid, qos)
                    return
            if self._up and inbound.link == self.link:
                self._send(mid, qos)
            # else: a later connection; the broker resends it (or its PUBREL) there

    def unknown_pubrel(self, mid: int) -> None:
        """A PUBREL for a message paho no longer holds (see ``transport._Paho``)."""
        with self._lock:
            if mid in self._open_qos2:  # still being handled: answered when it is done
                self._pubrel_again.add(mid)
                return
        self._send(mid, 2)  # handled already, or by a process that is gone
